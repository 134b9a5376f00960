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
import { formatCount, formatDuration, formatProgress, formatRate, percentOf, truncate } from "./format.js";
import type { RowLayout } from "./layout.js";
import type { EntryView, RemoteRun } from "./tui-store.js";

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

/** Memoised: the table passes `now` only to rows that show a clock, so idle rows skip re-rendering. */
export const EntryRow = memo(function EntryRow({ entry, layout, selected, now, remote }: EntryRowProps) {
  const short = layout.mode === "compact";
  const state = stateOf(entry, now, short);
  const progress = progressOf(entry, now, remote);
  if (progress && entry.pause === "yes") progress.rate = 0;
  const detail = detailOf(entry, remote);
  const head = (
    <>
      <Box width={1}>
        <Text color="cyan">{selected ? "›" : " "}</Text>
      </Box>
      <Cell width={layout.id}>
        <Text bold={selected} wrap="truncate-end">
          {entry.id}
        </Text>
      </Cell>
      {layout.plugin > 0 && (
        <Cell width={layout.plugin}>
          <Text dimColor wrap="truncate-end">
            {entry.plugin}
          </Text>
        </Cell>
      )}
      <Cell width={layout.state}>
        <Text color={state.color} dimColor={state.dim} wrap="truncate-end">
          {state.text}
        </Text>
      </Cell>
    </>
  );
  const figures = <Figures progress={progress} layout={layout} />;
  return (
    <Box flexDirection="column">
      {layout.mode === "stacked" ? (
        <>
          <Box columnGap={1}>{head}</Box>
          <Box columnGap={1} paddingLeft={2}>
            {figures}
          </Box>
        </>
      ) : (
        <Box columnGap={1}>
          {head}
          {figures}
        </Box>
      )}
      {detail && (
        <Box paddingLeft={2}>
          <Text color={detail.color} dimColor={detail.color === undefined} wrap="truncate-end">
            {truncate(detail.text, layout.columns - 2)}
          </Text>
        </Box>
      )}
    </Box>
  );
});

function Cell({ width, right = false, children }: { width: number; right?: boolean; children: ReactNode }) {
  return (
    <Box width={width} flexShrink={0} justifyContent={right ? "flex-end" : "flex-start"}>
      {children}
    </Box>
  );
}

function Figures({ progress, layout }: { progress: Progress | null; layout: RowLayout }) {
  if (progress === null) return null;
  if (progress.note !== undefined) {
    const width = layout.bar + layout.count + layout.rate + layout.eta + 3 + (layout.elapsed > 0 ? layout.elapsed + 1 : 0);
    return (
      <Cell width={width}>
        <Text dimColor wrap="truncate-end">
          {progress.note}
        </Text>
      </Cell>
    );
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
  return (
    <>
      <Cell width={layout.bar}>{bar}</Cell>
      <Cell width={layout.count} right>
        <Text wrap="truncate-start">{fitProgress(progress.done, progress.total, layout.count)}</Text>
      </Cell>
      <Cell width={layout.rate} right>
        <Text>{progress.live || progress.rate > 0 ? formatRate(progress.rate) : ""}</Text>
      </Cell>
      {layout.elapsed > 0 && (
        <Cell width={layout.elapsed} right>
          <Text dimColor>{progress.elapsedMs === null ? "" : formatDuration(progress.elapsedMs)}</Text>
        </Cell>
      )}
      <Cell width={layout.eta} right>
        <Text dimColor>{!progress.live ? "" : leftMs !== null && progress.rate > 0 ? formatDuration(Math.max(0, leftMs)) : "—"}</Text>
      </Cell>
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
  if (entry.durationMs !== null) {
    return {
      done: entry.done,
      total: null,
      rate: 0,
      elapsedMs: null,
      live: false,
      note: `last run: ${formatCount(entry.done)} in ${formatDuration(entry.durationMs)}`,
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
