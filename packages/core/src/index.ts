/**
 * @purger/core — the plugin SDK: what a plugin (first party or third party)
 * and a web server that puts deletions into the bin import. Stable within a
 * minor release.
 *
 * Other audiences have their own entry points: `@purger/core/testing` (the
 * testkit), `@purger/core/testing/setup` (its vitest global setup) and
 * `@purger/core/host` (the engine the purger CLI drives; unstable).
 */
export { definePlugin, defineBinHandler, defineSchema, uncheckedSchema } from "./plugin.js";
export type {
  AnyPlugin,
  BatchContext,
  BatchResult,
  BinContext,
  BinHandler,
  BinResult,
  Cursor,
  Diagnostic,
  EntryInfo,
  Json,
  PluginContext,
  PluginDefinition,
  RunContext,
  SchemaType,
  TypedSchema,
} from "./plugin.js";
export { PurgerError, exitCodeOf, isPurgerError } from "./errors.js";
export type { PurgerErrorCode, PurgerErrorOptions } from "./errors.js";
export { redactUrl } from "./redact.js";
export { silentLogger } from "./log.js";
export type { Logger } from "./log.js";
export type * from "./events.js";
export type * from "./config/types.js";
export { defineConfig } from "./config/load.js";
export type { PurgerConfigInput, EntryInput, DefaultsInput, GuardInput } from "./config/schema.js";
export { parseDuration, formatDuration, DURATION_PATTERN } from "./config/durations.js";
export { didYouMean } from "./config/errors.js";
export { parseQualifiedName, quoteIdent, quoteQualified } from "./db/quote.js";
export { assertUniqueKey } from "./db/unique-key.js";
export type { UniqueKeyCheck } from "./db/unique-key.js";
/** A web server's Node API to the bin (also `SELECT purger.enqueue(kind, payload)` from any language). */
export { enqueue } from "./engine/bin.js";
/** Helpers for what every plugin does: retrying external calls, permanent failures, a concurrency limit. */
export { retry, backoffMs } from "./sdk/retry.js";
export type { RetryOptions } from "./sdk/retry.js";
export { permanent, isPermanent } from "./sdk/permanent.js";
export { pLimit, limit, limitFunction } from "./sdk/limit.js";
export type { LimitFunction } from "./sdk/limit.js";
/** The Postgres catalog toolkit: tables, columns, keys and indexes an entry's options name. */
export {
  displayIdent,
  findColumn,
  keyColumn,
  leadingIndex,
  loadReferencingKeys,
  loadTable,
  loadTables,
  parseTableName,
  requireColumn,
  similarTables,
  suggestColumn,
} from "./sdk/catalog.js";
export type {
  ColumnInfo,
  ForeignKeyInfo,
  IndexInfo,
  LeadingIndexOptions,
  LoadTableOptions,
  Queryable,
  TableInfo,
  TableRef,
  TypeInfo,
} from "./sdk/catalog.js";
