/**
 * @purger/core — the public API. Plugins, the CLI and third parties import
 * only from here (and `@purger/core/testing`).
 */
export { definePlugin, defineBinHandler } from "./plugin.js";
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
  OptionsSchema,
  PluginContext,
  PluginDefinition,
  RunContext,
} from "./plugin.js";
export { PurgerError, exitCodeOf, isPurgerError } from "./errors.js";
export type { PurgerErrorCode, PurgerErrorOptions } from "./errors.js";
export { redactSecretsIn, redactUrl } from "./redact.js";
export { silentLogger } from "./log.js";
export type { Logger } from "./log.js";
export { PurgerEventEmitter } from "./events.js";
export type * from "./events.js";
export type * from "./config/types.js";
export * from "./config/index.js";
export { parseQualifiedName, quoteIdent, quoteQualified } from "./db/quote.js";
export { assertUniqueKey } from "./db/unique-key.js";
export type { UniqueKeyCheck } from "./db/unique-key.js";
export { createPool } from "./db/pool.js";
export { connectionBudget, planWorkerConnections, workerConnections, type ConnectionBudget } from "./db/capacity.js";
export { migrate, schemaVersion, type MigrateResult, type SchemaVersion } from "./db/migrations.js";
export { startEmbeddedPostgres } from "./db/embedded.js";
export { runEntry } from "./engine/run-entry.js";
export type { RunEntryOptions, RunResult } from "./engine/run-entry.js";
export type { DryRunMode, ResumableRun } from "./engine/run-entry.js";
export { cancelRun } from "./engine/cancel.js";
export type { CancelRunOptions } from "./engine/cancel.js";
export { startWorker, requestRun } from "./engine/worker.js";
export type { PurgerWorker, StartWorkerOptions } from "./engine/worker.js";
export { binKinds, binDepth, dropBinItems, enqueue, listBinItems, retryBinItems, validatePayload } from "./engine/bin.js";
export type { BinDepth, BinItem, BinKind } from "./engine/bin.js";
export { listRuns, pruneRuns } from "./engine/runs.js";
export type { RunRecord } from "./engine/runs.js";
export { clusterStatus, listProcesses } from "./engine/status.js";
export type { ClusterStatus, EntryStatus, ProcessInfo } from "./engine/status.js";
export { cronItems, nextRunAt } from "./engine/schedule.js";
export { checkEntry, estimateEntry } from "./engine/inspect.js";
export type { InspectOptions } from "./engine/inspect.js";
export type { JSONSchemaType } from "ajv";
