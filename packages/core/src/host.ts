/**
 * @purger/core/host — what a host of the engine uses: the purger CLI (and a
 * program that embeds purger the way the CLI does). Config loading and the
 * JSON Schema of purger.yaml, the database (pool, migrations, embedded
 * PostgreSQL), the worker, the run loop, the bin and the status queries.
 *
 * @experimental This entry point follows the CLI and may change in any
 * release; plugins import `@purger/core` only.
 */
export * from "./index.js";
export { PurgerEventEmitter } from "./events.js";
export { loadConfig, resolveConfig, SEARCH_PLACES } from "./config/load.js";
export type { LoadConfigOptions } from "./config/load.js";
export { CONFIG_DEFAULTS } from "./config/resolve.js";
export { purgerJsonSchema, DEFAULTS_KEYS } from "./config/schema.js";
export { parseSchedule, validateTimezone, MIN_EVERY_MS } from "./config/schedule.js";
export { interpolateString } from "./config/interpolate.js";
export { loadPlugin, resolvePluginPath, pluginShapeProblems, optionsValidator } from "./config/resolve-plugin.js";
export type { ResolvePluginOptions } from "./config/resolve-plugin.js";
export { formatProblem } from "./config/errors.js";
export { displayName } from "./config/checks.js";
export type { ConfigProblem } from "./config/errors.js";
export { redactSecretsIn } from "./redact.js";
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
export { binKinds, binDepth, dropBinItems, listBinItems, retryBinItems, validatePayload } from "./engine/bin.js";
export type { BinDepth, BinItem, BinKind } from "./engine/bin.js";
export { listRuns, pruneRuns } from "./engine/runs.js";
export type { RunRecord } from "./engine/runs.js";
export { clusterStatus, listProcesses } from "./engine/status.js";
export type { ClusterStatus, EntryStatus, ProcessInfo } from "./engine/status.js";
export { cronItems, nextRunAt } from "./engine/schedule.js";
export { checkEntry, estimateEntry } from "./engine/inspect.js";
export type { InspectOptions } from "./engine/inspect.js";
