/* @jsxRuntime automatic */
/**
 * One entry: id, plugin, state, a progress bar with done/total when the
 * plugin estimates (a spinner and a count when it cannot), smoothed rate,
 * elapsed, ETA, and the last error in red on a line of its own.
 */
import { memo, type ReactNode } from "react";
import { Box, Text } from "ink";
import { ProgressBar } from "@inkjs/ui";
import { Busy } from "./Busy.js";
import { fit, formatCount, formatDuration, formatProgress, formatRate, percentOf, truncate } from "./format.js";
import type { RowLayout } from "./layout.js";
import type { EntryView, RemoteRun } from "./snapshot.js";

export interface EntryRowProps {
  entry: EntryView;
  layout: RowLayout;
  selected: boolean;
  now: number;
  /** The run of this entry in another process, if any. */
  remote?: RemoteRun | undefined;
}

type Color = "green" | "yellow" | "red" | "cyan" | undefined;

interface Progress {
  done: number;
  total: number | null;
  rate: number;
  elapsedMs: number | null;
  /** A run is moving: a spinner when the total is unknown, an ETA when it is known. */
  live: boolean;
  /** Dim text in place of the figures (e.g. the last run when idle). */
  note?: string;
}

/**
 * Memoised: the table passes `now` only to rows that show a clock, so idle
 * rows skip re-rendering. A row is a few text spans around the bar rather
 * than a box per column: every box is a layout node, every frame.
 */
export const EntryRow = memo(function EntryRow({ entry, layout, selected, now, remote }: EntryRowProps) {
  const short = layout.mode === "compact";
  const state = stateOf(entry, now, short);
  const progress = progressOf(entry, now, remote);
  if (progress && entry.pause === "yes") progress.rate = 0;
  const detail = detailOf(entry, remote);
  const head = (
    <Text>
      <Text color="cyan">{selected ? "›" : " "}</Text> <Text bold={selected}>{fit(entry.id, layout.id)}</Text>{" "}
      {layout.plugin > 0 && <Text dimColor>{`${fit(entry.plugin, layout.plugin)} `}</Text>}
      <Text color={state.color} dimColor={state.dim}>
        {fit(state.text, layout.state)}
      </Text>
    </Text>
  );
  return (
    <Box flexDirection="column">
      {layout.mode === "stacked" ? (
        <>
          {head}
          {progress && (
            <Box>
              <Text>{"  "}</Text>
              <Figures progress={progress} layout={layout} />
            </Box>
          )}
        </>
      ) : (
        <Box>
          {head}
          {progress && (
            <>
              <Text> </Text>
              <Figures progress={progress} layout={layout} />
            </>
          )}
        </Box>
      )}
      {detail && (
        <Text color={detail.color} dimColor={detail.color === undefined} wrap="truncate-end">
          {"  "}
          {truncate(detail.text, layout.columns - 2)}
        </Text>
      )}
    </Box>
  );
});

function Figures({ progress, layout }: { progress: Progress; layout: RowLayout }) {
  if (progress.note !== undefined) {
    const width = layout.bar + layout.count + layout.rate + layout.eta + 3 + (layout.elapsed > 0 ? layout.elapsed + 1 : 0);
    return <Text dimColor>{fit(progress.note, width)}</Text>;
  }
  const percent = percentOf(progress.done, progress.total);
  const leftMs = progress.total !== null && progress.rate > 0 ? ((progress.total - progress.done) / progress.rate) * 1000 : null;
  let bar: ReactNode = null;
  if (percent !== null) bar = <ProgressBar value={percent} />;
  else if (progress.live) {
    bar = (
      <Box>
        <Busy />
        <Text dimColor wrap="truncate-end">
          {" "}
          no estimate
        </Text>
      </Box>
    );
  }
  const count = fit(fitProgress(progress.done, progress.total, layout.count), layout.count, "right");
  const rate = fit(progress.live || progress.rate > 0 ? formatRate(progress.rate) : "", layout.rate, "right");
  const elapsed =
    layout.elapsed > 0 ? ` ${fit(progress.elapsedMs === null ? "" : formatDuration(progress.elapsedMs), layout.elapsed, "right")}` : "";
  const eta = fit(
    !progress.live ? "" : leftMs !== null && progress.rate > 0 ? formatDuration(Math.max(0, leftMs)) : "—",
    layout.eta,
    "right",
  );
  return (
    <>
      <Box width={layout.bar} flexShrink={0}>
        {bar}
      </Box>
      <Text>
        {` ${count} ${rate}`}
        <Text dimColor>{`${elapsed} ${eta}`}</Text>
      </Text>
    </>
  );
}

interface StateText {
  text: string;
  color: Color;
  dim: boolean;
}

/** The state column: `short` texts fit 12 columns. */
export function stateOf(entry: EntryView, now: number, short = false): StateText {
  const s = entry.state;
  const until = (at: number) => formatDuration(Math.max(0, at - now));
  if (entry.pause === "yes") return { text: "paused", color: "yellow", dim: false };
  if (entry.pause === "requested") return { text: "pausing…", color: "yellow", dim: false };
  const sweeping = s.kind === "running" || s.kind === "starting" || s.kind === "waiting" || s.kind === "retrying";
  if (entry.binItem && !sweeping) {
    const active = entry.binItem.active;
    return { text: short ? `bin ×${active}` : active > 1 ? `${active} bin items` : "bin item", color: "green", dim: false };
  }
  switch (s.kind) {
    case "running":
      return { text: "running", color: "green", dim: false };
    case "starting":
      if (s.estimate) return { text: "estimating…", color: "cyan", dim: false };
      return { text: "starting…", color: "cyan", dim: false };
    case "waiting":
      return { text: short ? "lock wait" : "waiting for lock", color: "yellow", dim: false };
    case "retrying":
      return { text: s.at === null ? "retrying" : `${short ? "retry" : "retrying"} in ${until(s.at)}`, color: "yellow", dim: false };
    case "elsewhere":
      return { text: short ? "elsewhere" : "running elsewhere", color: "cyan", dim: false };
    case "suspended":
      return { text: short ? "stopped" : "stopped · resumes", color: "yellow", dim: false };
    case "scheduled":
      // Due, waiting for a free worker slot (or its jitter).
      if (s.at <= now) return { text: "queued", color: undefined, dim: true };
      return { text: short ? `next ${until(s.at)}` : `next run in ${until(s.at)}`, color: undefined, dim: true };
    case "finished":
      return FINISHED[s.status];
    case "idle":
      break;
  }
  return { text: "idle", color: undefined, dim: true };
}

const FINISHED = {
  succeeded: { text: "done", color: "green", dim: false },
  failed: { text: "failed", color: "red", dim: false },
  guarded: { text: "guarded", color: "yellow", dim: false },
  interrupted: { text: "interrupted", color: "yellow", dim: false },
  superseded: { text: "superseded", color: "yellow", dim: false },
  cancelled: { text: "cancelled", color: "yellow", dim: false },
} as const satisfies Record<string, StateText>;

function progressOf(entry: EntryView, now: number, remote: RemoteRun | undefined): Progress | null {
  const s = entry.state;
  if (s.kind === "suspended" && entry.startedAt !== null) {
    return { done: entry.done, total: entry.total, rate: 0, elapsedMs: null, live: false };
  }
  if (s.kind === "running" || (s.kind === "waiting" && entry.startedAt !== null)) {
    return {
      done: entry.done,
      total: entry.total,
      rate: entry.rate,
      elapsedMs: entry.startedAt === null ? null : now - entry.startedAt,
      live: true,
    };
  }
  if (s.kind === "elsewhere" && remote) {
    return { done: remote.processed, total: remote.total, rate: 0, elapsedMs: now - remote.startedAt, live: false };
  }
  if (entry.binItem) {
    const item = entry.binItem;
    return { done: item.done, total: item.total, rate: item.rate, elapsedMs: now - item.startedAt, live: true };
  }
  if (s.kind === "finished" && entry.durationMs !== null) {
    const rate = entry.durationMs > 0 ? (entry.done / entry.durationMs) * 1000 : 0;
    // A run that succeeded did everything there was (the estimate may have been off).
    const total = s.status === "succeeded" ? entry.done : entry.total;
    return { done: entry.done, total, rate, elapsedMs: entry.durationMs, live: false };
  }
  if (entry.last !== null) {
    const { processed, durationMs } = entry.last;
    return {
      done: processed,
      total: null,
      rate: 0,
      elapsedMs: null,
      live: false,
      note: `last run: ${formatCount(processed)} in ${formatDuration(durationMs)}`,
    };
  }
  return null;
}

function detailOf(entry: EntryView, remote: RemoteRun | undefined): { text: string; color: Color } | null {
  if (entry.lastError) return { text: `✖ ${entry.lastError}`, color: "red" };
  if (entry.state.kind === "waiting") {
    return {
      text: `another process runs this entry${entry.state.holder ? ` (${entry.state.holder})` : ""}; waiting for it`,
      color: undefined,
    };
  }
  if (entry.state.kind === "starting" && entry.state.estimate) {
    const { done, total } = entry.state.estimate;
    return { text: `counted ${formatCount(done)}${total === null ? "" : ` of ${formatCount(total)}`} so far`, color: undefined };
  }
  if (entry.state.kind === "elsewhere") return { text: `on ${remote?.processId ?? entry.state.processId}`, color: undefined };
  if (entry.binItem && entry.state.kind !== "running") return { text: `${entry.binItem.kind} #${entry.binItem.itemId}`, color: undefined };
  return null;
}

/** Whether a row shows something that moves with the clock (elapsed, ETA, a countdown). */
export function showsClock(entry: EntryView): boolean {
  return entry.binItem !== null || !["idle", "finished", "suspended", "starting"].includes(entry.state.kind) || entry.pause !== "no";
}

/** Done/total in full when it fits the column, else in short units. */
function fitProgress(done: number, total: number | null, width: number): string {
  const full = formatProgress(done, total);
  return full.length <= width ? full : formatProgress(done, total, true);
}
