/**
 * The plugin SDK: everything a plugin author (first party or third party)
 * needs. A plugin is a plain object; `definePlugin` exists for its types.
 * The plugin writes one batch; the core drives the loop, the transactions,
 * the checkpoint, the guards, dry runs, retries and events.
 */
import type { JSONSchemaType } from "ajv";
import type pg from "pg";
import type { Logger } from "./log.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Where a sweep resumes: any JSON value the plugin chooses. */
export type Cursor = Json;

/** Facts about the configured entry a plugin runs for. */
export interface EntryInfo {
  /** The entry's unique `id` in purger.yaml. */
  id: string;
  /** The retention window in milliseconds, or null when the plugin uses none. */
  retentionMs: number | null;
  /** Rows/items per batch (the entry's `batchSize`, or the current adaptive size). */
  batchSize: number;
  /** Directory of the configuration file: resolve relative paths from here. */
  configDir: string;
}

/** What every plugin hook gets. */
export interface PluginContext<O> {
  entry: EntryInfo;
  /** The entry's `options`, validated against the plugin's schema, defaults applied. */
  options: O;
  /** A pool on the purger database. */
  pool: pg.Pool;
  /** Structured logger bound to the entry (and run). */
  log: Logger;
  /** Aborts on shutdown, timeout, pause or cancel; check it between units of work. */
  signal: AbortSignal;
}

/** Context of one run (fixed for all its batches). */
export interface RunContext<O, S> extends PluginContext<O> {
  /** `startedAt − retention`; fixed at the start of the run. Items newer than this must never be touched. */
  cutoff: Date;
  /** The run's start time; the same for every batch of the run (use it for "now" values). */
  startedAt: Date;
  /** True when nothing may change: the core rolls the batch transaction back, and the plugin must not call external systems. */
  dryRun: boolean;
  /** The batch size for this batch. */
  batchSize: number;
  /** What `prepare` returned. */
  state: S;
  /**
   * Set only for `estimate`: report how far a long count (listing a bucket)
   * has got — `done` items so far, of `total` when known. The UI shows it
   * while the run starts.
   */
  progress?: (done: number, total?: number | null) => void;
}

/** Context of one batch. */
export interface BatchContext<O, S> extends RunContext<O, S> {
  /** A client inside this batch's transaction. The core commits it (with the checkpoint) or rolls it back (dry run). */
  client: pg.ClientBase;
  /** Where the previous batch stopped; null on the first batch of a run. */
  cursor: Cursor | null;
  /**
   * When the slice's time (the entry's `timeout`) is up. A batch that waits on
   * another system stops its calls here and returns, rather than overrun it.
   */
  deadline?: Date;
}

export interface BatchResult {
  /** Items deleted or updated (or that a dry run would touch) in this batch, for the entry's main target. */
  processed: number;
  /** Where the next batch resumes. */
  cursor: Cursor | null;
  /** True when nothing qualifies any more. Default: `processed === 0`. */
  done?: boolean;
  /** Breakdown per table (or kind) when more than one is touched, including the main one. */
  tables?: Record<string, number>;
  /** A few ids of touched items (shown by dry runs). */
  sample?: string[];
}

/** A finding of `purger doctor`. */
export interface Diagnostic {
  level: "ok" | "warn" | "error";
  message: string;
  /** How to fix it (e.g. the CREATE INDEX statement). */
  hint?: string;
}

/** Context of a bin handler: one item of the bin. */
export interface BinContext<O, S> extends PluginContext<O> {
  state: S;
  /** The run's start time for this item. */
  startedAt: Date;
  item: {
    id: string;
    kind: string;
    /** 1 on the first attempt. */
    attempt: number;
    /** Last checkpoint saved by an earlier slice or attempt, null at first. */
    checkpoint: Json | null;
  };
  /** Run `fn` in a transaction on one client (committed when it resolves, rolled back when it throws). */
  transaction<T>(fn: (client: pg.ClientBase) => Promise<T>): Promise<T>;
  /** Persist progress so a killed worker continues from here. */
  saveCheckpoint(checkpoint: Json, processed: number): Promise<void>;
  /** Report progress within the item (items done so far; total when known). */
  progress(done: number, total?: number | null): void;
}

export interface BinResult {
  /** Items deleted/updated for this bin item. */
  processed: number;
  /** False when the handler stopped early (signal) and must be continued from its checkpoint. Default true. */
  done?: boolean;
  tables?: Record<string, number>;
}

export type OptionsSchema<T> = JSONSchemaType<T> | Record<string, unknown>;

export interface BinHandler<O, S, P> {
  /** JSON Schema of the payload (checked at enqueue and again before handling). */
  schema: OptionsSchema<P>;
  /** Optional extra validation after the schema (return an error message, or null). */
  validate?(payload: P, options: O): string | null;
  handle(ctx: BinContext<O, S>, payload: P): Promise<BinResult>;
}

export interface PluginDefinition<O, S = undefined> {
  /** npm package name (or a local name). */
  name: string;
  version: string;
  /** JSON Schema of the entry's `options` (ajv; defaults in the schema are applied). */
  options: OptionsSchema<O>;
  /**
   * Whether an entry must set `retention` (true) or must not (false).
   * A function decides from the options (e.g. blob uses it only for its uploads sweep).
   */
  usesRetention: boolean | ((options: O) => boolean);
  /**
   * Resolve the entry against the live system once per run or process (catalog lookups,
   * clients). Throw `PurgerError("TARGET", …)` when a table, column or bucket does not exist.
   */
  prepare?(ctx: PluginContext<O>): Promise<S>;
  /** Release what `prepare` acquired. */
  release?(state: S): Promise<void>;
  /** Process one batch of the scheduled sweep. Omit for bin-only plugins. */
  batch?(ctx: BatchContext<O, S>): Promise<BatchResult>;
  /** Items left to process (for progress and ETA), or null when unknown. */
  estimate?(ctx: RunContext<O, S>): Promise<number | null>;
  /** Exact count of qualifying items, capped at `limit` (guards). */
  count?(ctx: RunContext<O, S>, limit: number): Promise<number>;
  /** Exact count of all items of the target (guard `maxFraction`). */
  countAll?(ctx: RunContext<O, S>): Promise<number>;
  /** Diagnostics for `purger doctor`. */
  check?(ctx: PluginContext<O> & { state: S }): Promise<Diagnostic[]>;
  /** One line naming the target (table, bucket …) for `purger plan` and the UI. */
  describe?(options: O): string;
  /** Bin handlers: `<entry id>.<name>` kinds. */
  bin?: Record<string, BinHandler<O, S, any>>;
}

/** A plugin as the core sees it, whatever its option types. */
export type AnyPlugin = PluginDefinition<any, any>;

/**
 * Define a plugin. An identity function: it exists so that the options type
 * flows into every hook.
 */
export function definePlugin<O, S = undefined>(plugin: PluginDefinition<O, S>): PluginDefinition<O, S> {
  return plugin;
}

/** Define a bin handler with its payload type inferred from the schema's type argument. */
export function defineBinHandler<O, S, P>(handler: BinHandler<O, S, P>): BinHandler<O, S, P> {
  return handler;
}
