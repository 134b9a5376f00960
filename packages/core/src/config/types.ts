import type { AnyPlugin } from "../plugin.js";

/** When an entry runs on its own. */
export type Schedule =
  /** A 5-field cron expression, fired once per tick cluster-wide (graphile-worker cron). */
  | { kind: "cron"; expression: string; timezone: string }
  /** A fixed interval (seconds and up), as a self-rescheduling job. */
  | { kind: "every"; everyMs: number };

export interface Guard {
  /** Stop (status `guarded`) when more than this many items qualify. */
  maxRows?: number;
  /** Stop when qualifying / all rows of the target exceeds this fraction (0..1). */
  maxFraction?: number;
}

/** `batchSize: auto`: the core adapts the size so that one batch takes about `targetMs`. */
export interface AutoBatchSize {
  auto: true;
  targetMs: number;
  initial: number;
}

/** One entry of `plugins:`, resolved: durations in ms, defaults applied, plugin loaded, options validated. */
export interface EntryConfig {
  id: string;
  /** The `use:` string as written. */
  use: string;
  plugin: AnyPlugin;
  enabled: boolean;
  schedule: Schedule | null;
  runOnStart: boolean;
  retentionMs: number | null;
  batchSize: number | AutoBatchSize;
  /** Length of one slice of a run. */
  timeoutMs: number;
  /** Spread of scheduled start times, a fraction of the interval (0.1 = 10 %). */
  jitter: number;
  after: string | null;
  guard: Guard | null;
  /** Validated options with the schema's defaults applied. */
  options: unknown;
  /** Where the entry is in the file (for messages). */
  source?: { line: number; column: number };
}

export interface PurgerConfig {
  /** Absolute path of the file read, or null when built in code. */
  file: string | null;
  /** Directory used to resolve relative paths. */
  dir: string;
  database: { url: string | null };
  worker: { concurrency: number; shutdownTimeoutMs: number; schema: string };
  runs: { keepMs: number };
  timezone: string;
  http: {
    listen: string;
    token: string;
    maxConnections: number;
    /** `GET /healthz` and `GET /readyz` need no token. */
    probesWithoutToken: boolean;
    /** Where `http.listen` is in the file (`http:` itself when the default applies), for the error when it cannot be bound. */
    listenAt?: { line: number; column: number };
  } | null;
  entries: EntryConfig[];
  /** Things worth telling that do not stop purger (e.g. a default guard a plugin cannot enforce), one line each. */
  warnings?: string[];
}
