/**
 * The plugin SDK: everything a plugin author (first party or third party)
 * needs. A plugin is a plain object; `definePlugin` exists for its types.
 * The plugin writes one batch; the core drives the loop, the transactions,
 * the checkpoint, the guards, dry runs, retries and events.
 */
import type { FromSchema, JSONSchema } from "json-schema-to-ts";
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
  /**
   * Aborts on shutdown, the end of a slice's time, pause or cancel; check it
   * between units of work, and pass it to external calls.
   *
   * Stopping on an abort is never a failure of the plugin. A batch that throws
   * because this signal fired (`signal.throwIfAborted()`, an aborted fetch)
   * costs no attempt: its transaction is rolled back and the run stays
   * resumable from its last checkpoint (see packages/core/test/abort.test.ts).
   * A bin handler stops by saving its checkpoint and returning
   * `{ processed, done: false }`: the item continues later, costing no attempt;
   * one that throws on a shutdown or a lost claim costs none either, but a
   * throw after the entry's `timeout` counts as a failed attempt.
   */
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
  /**
   * How many items the current batch takes at most: the entry's `batchSize`,
   * or under `batchSize: auto` the size adapted to the time batches took so
   * far (in `estimate`, `count` and `countAll`: the starting size).
   */
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
  /** The entry's `batchSize` (its starting size under `auto`): how many rows or objects one transaction or request should take. */
  batchSize: number;
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
  /**
   * Persist progress so a killed worker continues from here. `processed` is
   * cumulative: everything done for this item so far, earlier slices and
   * attempts included.
   */
  saveCheckpoint(checkpoint: Json, processed: number): Promise<void>;
  /** Report progress within the item (items done so far; total when known). */
  progress(done: number, total?: number | null): void;
}

export interface BinResult {
  /**
   * Items deleted/updated for this bin item, cumulative: everything done for
   * the whole item, across its slices and attempts (start from the
   * `processed` of the last checkpoint), not only by this call. The item's
   * count is the largest value reported.
   */
  processed: number;
  /** False when the handler stopped early (signal) and must be continued from its checkpoint. Default true. */
  done?: boolean;
  tables?: Record<string, number>;
}

declare const validatedType: unique symbol;
declare const validatedKeys: unique symbol;

/**
 * A JSON Schema that carries the type of the values it accepts (after ajv
 * applied its defaults). Made by `defineSchema` (the type derived from the
 * schema) or `uncheckedSchema` (the type taken on trust). The type is only
 * for the compiler: at run time it is the plain schema object.
 *
 * `TypedSchema<O>` accepts a schema whose derived type is exactly `O`: a
 * property of another type, a key the type requires but the schema does not
 * (or the other way round), or a key that one side has and the other lacks,
 * at any depth, fails to compile. (`K` is how the keys are compared; leave it
 * to its default.)
 */
export interface TypedSchema<T, K = KeyShape<T>> {
  // Functions of T in both directions make the check exact (T invariant), not merely "assignable to T".
  readonly [validatedType]: (value: T) => T;
  // Mutual assignability lets an optional key be missing on either side; comparing the key sets does not.
  readonly [validatedKeys]: (keys: K) => K;
}

/** The type of the values a `TypedSchema` accepts: `SchemaType<typeof optionsSchema>`. */
export type SchemaType<S> = S extends TypedSchema<infer T, any> ? T : never;

/**
 * `T` with every object key made required (the value types without
 * `undefined`), through arrays and unions: two types with the same KeyShape
 * have the same keys at every depth.
 */
type KeyShape<T> =
  | Exclude<T, object>
  | ([Extract<T, readonly unknown[]>] extends [never] ? never : KeyShape<Extract<T, readonly unknown[]>[number]>[])
  | ObjectKeyShape<Exclude<Extract<T, object>, readonly unknown[]>>;
type ObjectKeyShape<T> = [T] extends [never] ? never : { [K in KeysOfAny<T>]-?: KeyShape<Exclude<ValueOfAny<T, K>, undefined>> };
type KeysOfAny<T> = T extends unknown ? keyof T : never;
type ValueOfAny<T, K extends PropertyKey> = T extends unknown ? (K extends keyof T ? T[K] : never) : never;

/** What `defineSchema` derives from a schema it cannot read. */
type NotReadable =
  "not a JSON Schema defineSchema can read: its keywords need literal types (write it inline, or `as const` on parts kept in variables)";

/**
 * A plugin's JSON Schema (draft-07, for ajv), with the type of what it
 * accepts derived from it (json-schema-to-ts's `FromSchema`). Write the
 * schema inline, or `as const` on the parts kept in variables, so that
 * TypeScript sees its literal keywords. Properties with a `default` count as
 * present: purger applies defaults before a plugin sees its options or
 * payloads.
 *
 * @example
 * export const optionsSchema: TypedSchema<FilesOptions> = defineSchema({
 *   type: "object",
 *   properties: { dir: { type: "string", minLength: 1 } },
 *   required: ["dir"],
 *   additionalProperties: false,
 * });
 */
// `Schema` is constrained loosely on purpose: `extends JSONSchema` makes TypeScript check the literal against
// that large union while inferring it, millions of instantiations for a schema the size of the first-party plugins'.
export function defineSchema<const Schema extends object | boolean>(
  schema: Schema,
): TypedSchema<Schema extends JSONSchema ? FromSchema<Schema> : NotReadable> {
  return schema as never;
}

/**
 * A JSON Schema whose accepted values are declared to be `T` **without any
 * check**: for a schema `defineSchema` cannot read (one built at run time,
 * `$ref`s to other documents). Nothing checks that the schema and `T` agree;
 * prefer `defineSchema`.
 */
export function uncheckedSchema<T>(schema: object | boolean): TypedSchema<T> {
  return schema as never;
}

export interface BinHandler<O, S, P> {
  /** JSON Schema of the payload (checked at enqueue and again before handling). */
  schema: TypedSchema<P>;
  /** Optional extra validation after the schema (return an error message, or null). */
  validate?(payload: P, options: O): string | null;
  handle(ctx: BinContext<O, S>, payload: P): Promise<BinResult>;
}

/**
 * A plugin. `O` is its options type, `S` what `prepare` returns, `P` maps
 * each bin handler's name to its payload type.
 */
export interface PluginDefinition<O, S = undefined, P extends Record<string, unknown> = Record<string, any>> {
  /** npm package name (or a local name). */
  name: string;
  version: string;
  /**
   * JSON Schema of the entry's `options`, from `defineSchema` (or
   * `uncheckedSchema`). purger compiles it with ajv in strict mode when it
   * loads the plugin (an unknown keyword or format is an error) and applies
   * its defaults to every entry's options.
   */
  options: TypedSchema<O>;
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
  /**
   * Release what `prepare` acquired. Called only after a `prepare` that
   * succeeded, with what it returned (a `prepare` that threw has nothing to
   * release): once at the end of the run, and for the bin when the process
   * stops.
   */
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
  /** Bin handlers: `<entry id>.<name>` kinds, each with the payload type of its schema. */
  bin?: { [K in keyof P]: BinHandler<O, S, P[K]> };
}

/** A plugin as the core sees it, whatever its option types. */
export type AnyPlugin = PluginDefinition<any, any, any>;

/**
 * Define a plugin. An identity function: it exists for the types. The options
 * type comes from the `options` schema (or is declared, `definePlugin<O, S>`,
 * and the schema is checked against it), the state type from what `prepare`
 * returns, and each bin handler's payload type from its schema.
 */
export function definePlugin<O, S = undefined, P extends Record<string, unknown> = Record<string, any>>(
  plugin: PluginDefinition<O, S, P>,
): PluginDefinition<O, S, P> {
  return plugin;
}

/**
 * Define a bin handler apart from its plugin. The payload type comes from the
 * schema; declare `defineBinHandler<O, S, P>` to check the schema against a
 * payload type (and to type `ctx.options` and `ctx.state`).
 */
export function defineBinHandler<O, S, P>(handler: BinHandler<O, S, P>): BinHandler<O, S, P> {
  return handler;
}
