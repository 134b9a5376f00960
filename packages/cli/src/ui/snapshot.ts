/**
 * What the terminal UI draws: one immutable snapshot of the store (views of
 * the entries, the bin, the cluster, the finished runs), and the identity
 * rules that let unchanged parts keep their object from one snapshot to the
 * next (memoised components skip them).
 */
import type { BinDepth, RunRecord, RunStatus } from "@purger/core/host";

export type TuiMode = "once" | "run" | "demo";

/** What an entry is doing, as the state column shows it. */
export type EntryState =
  | { kind: "idle" }
  /** About to run: connecting, estimating, checking guards. */
  | { kind: "starting"; estimate?: { done: number; total: number | null } }
  | { kind: "scheduled"; at: number }
  | { kind: "running" }
  | { kind: "waiting"; holder: string | null }
  | { kind: "retrying"; at: number | null; attempt: number; maxAttempts: number }
  | { kind: "elsewhere"; processId: string }
  /** The process stopped mid-run (worker drain): the run resumes from its checkpoint next time. */
  | { kind: "suspended" }
  | { kind: "finished"; status: Exclude<RunStatus, "running"> };

export interface EntryView {
  id: string;
  /** Short plugin name ("retention"). */
  plugin: string;
  state: EntryState;
  /** `requested`: `p` was pressed, the run pauses at its next batch boundary. */
  pause: "no" | "requested" | "yes";
  /** Items done by the current (or last) run, and its total when the plugin estimates. */
  done: number;
  total: number | null;
  /** Smoothed items per second of the current run. */
  rate: number;
  /** Wall-clock start of the current run (ms), or null. */
  startedAt: number | null;
  /** Duration of the last finished run. */
  durationMs: number | null;
  /** The last run that did something (a service's runs that find nothing do not replace it). */
  last: { processed: number; durationMs: number } | null;
  lastError: string | null;
  /** A bin item of this entry being handled in this process. */
  binItem: { kind: string; itemId: string; done: number; total: number | null; startedAt: number; rate: number; active: number } | null;
}

export interface BinKindView extends BinDepth {
  /** Items of this kind handled (and failed for good) by this process. */
  handled: number;
  failedHere: number;
}

export interface RemoteRun {
  entry: string;
  processId: string;
  processed: number;
  total: number | null;
  startedAt: number;
}

export interface FinishedRun {
  key: string;
  entry: string;
  /** "run" or the bin kind. */
  what: string;
  status: Exclude<RunStatus, "running">;
  processed: number;
  durationMs: number;
  dryRun: boolean;
  detail: string | null;
}

export interface RunsPanel {
  entry: string;
  runs: RunRecord[] | null;
  error: string | null;
}

export interface TuiSnapshot {
  mode: TuiMode;
  /** What the header names ("once revoked-access-tokens"). */
  title: string;
  database: string;
  processId: string;
  startedAt: number;
  now: number;
  concurrency: number;
  /** Live purger processes of the cluster (null until the first poll). */
  processes: number | null;
  entries: EntryView[];
  bin: BinKindView[];
  remote: RemoteRun[];
  finished: FinishedRun[];
  selected: number;
  runsPanel: RunsPanel | null;
  quitting: boolean;
  /** The command is over: the last frame stays on the screen. */
  ended: boolean;
  logFile: string | null;
  /** A transient message for the footer (e.g. the cluster poll failed). */
  notice: string | null;
  /** What the command does before its work starts ("seeding …"), shown with a spinner. */
  stage: string | null;
}

/** Same content: the previous view can be kept (and its row skipped). */
export function sameEntry(a: EntryView, b: EntryView): boolean {
  return (
    shallowEqual(a, b, ["state", "binItem"]) &&
    shallowEqual(a.state, b.state) &&
    (a.binItem === b.binItem || (a.binItem !== null && b.binItem !== null && shallowEqual(a.binItem, b.binItem)))
  );
}

export function sameList<T extends object>(a: T[], b: T[]): boolean {
  return a.length === b.length && a.every((item, i) => shallowEqual(item, b[i]!));
}

function shallowEqual(a: object, b: object, skip: string[] = []): boolean {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  if (keys.length !== Object.keys(y).length) return false;
  return keys.every((key) => skip.includes(key) || Object.is(x[key], y[key]));
}
