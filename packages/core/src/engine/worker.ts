/**
 * The service (`purger run`): graphile-worker in library mode with one task per
 * entry (`purger:entry`, each entry in its own named queue so it runs at most
 * once at a time cluster-wide) and one for the bin (`purger:bin`); cron, `every`,
 * `runOnStart`, `after:` chaining; a heartbeat that releases the jobs of dead
 * processes instead of waiting for graphile-worker's 4-hour lock expiry.
 */
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  Logger as GraphileLogger,
  makeWorkerUtils,
  run,
  type JobHelpers,
  type Runner,
  type Task,
  type WorkerEvents,
  type WorkerUtils,
} from "graphile-worker";
import type pg from "pg";
import type { EntryConfig, PurgerConfig } from "../config/types.js";
import { BIN_TASK } from "../db/migrations.js";
import type { PurgerEventEmitter, RunTrigger } from "../events.js";
import { silentLogger, type Logger } from "../log.js";
import { binKinds, binKindTask } from "./bin.js";
import { createBinItemLocks } from "./bin-lock.js";
import { handleBinItem, type BinStateCache } from "./bin-task.js";
import { startHeartbeat } from "./heartbeat.js";
import { errorMessage, runEntry, type RunResult } from "./run-entry.js";
import { insertFinishedRun, pruneRuns } from "./runs.js";
import { isPurgerError, type PurgerError } from "../errors.js";
import { cronItems, ENTRY_TASK, entryJobKey, entryQueue, jitterDelay, nextRunAt } from "./schedule.js";

export interface StartWorkerOptions {
  config: PurgerConfig;
  pool: pg.Pool;
  events?: PurgerEventEmitter;
  log?: Logger;
  /** Overrides `worker.concurrency`. */
  concurrency?: number;
  /** Entries paused in this process (the TUI's `p`). */
  isPaused?: (entry: string) => boolean;
  /** Heartbeat period and the silence after which a process counts as dead (tests shorten them). */
  heartbeatMs?: number;
  deadAfterMs?: number;
}

export interface PurgerWorker {
  processId: string;
  /** Drain: running batches finish (or roll back), runs stay resumable; resolves when stopped. */
  stop(): Promise<void>;
  /** Resolves when the worker stops (or rejects on a fatal error). */
  promise: Promise<void>;
  utils: WorkerUtils;
}

interface EntryPayload {
  entry: string;
  trigger: RunTrigger;
  jittered?: boolean;
}

const LOCKED_RETRY_MS = 5_000;
const PRUNE_EVERY_MS = 3_600_000;

export async function startWorker(options: StartWorkerOptions): Promise<PurgerWorker> {
  const { config, pool } = options;
  const events = options.events;
  const log = options.log ?? silentLogger;
  const processId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const schema = config.worker.schema;
  const entries = new Map(config.entries.map((e) => [e.id, e]));
  const kinds = binKinds(config.entries);
  const stopController = new AbortController();
  const binStates: BinStateCache = new Map();
  const binLocks = createBinItemLocks(pool, log);
  const deadAfterMs = options.deadAfterMs ?? 30_000;
  const utils = await makeWorkerUtils({ pgPool: pool, schema, logger: graphileLogger(log) });

  const runEntryTask: Task = async (rawPayload, helpers) => {
    const payload = rawPayload as EntryPayload;
    const entry = entries.get(payload.entry);
    if (!entry) {
      log.warn({ entry: payload.entry }, "a job for an entry this process's config does not have; ignored");
      return;
    }
    if (!entry.enabled) return;
    if (payload.trigger === "schedule" && !payload.jittered) {
      const delay = jitterDelay(entry);
      if (delay >= 1000) {
        await addEntryJob(helpers, entry, "schedule", "retry", new Date(Date.now() + delay), { jittered: true });
        return;
      }
    }
    const signal = AbortSignal.any([helpers.abortSignal ?? stopController.signal, stopController.signal]);
    const startedAt = new Date();
    const result = await runEntry({
      pool,
      entry,
      trigger: payload.trigger,
      sliced: true,
      onLocked: "skip",
      onAbort: "suspend",
      signal,
      log,
      processId,
      configDir: config.dir,
      ...(events ? { events } : {}),
      ...(options.isPaused ? { isPaused: () => options.isPaused!(entry.id) } : {}),
    }).catch((error: unknown) => {
      // A run that could not start (its table is missing, its plugin's set-up failed) is recorded as
      // failed, so `purger status` and the UI show it, and an `every` schedule goes on. Other
      // errors (the database went away) leave any run resumable and go to graphile-worker's retry.
      if (!isPurgerError(error)) throw error;
      return recordUnstartedRun(entry, payload.trigger, startedAt, error);
    });
    if (result.status === "locked") {
      // Another process (e.g. `purger once`) runs it; a tick is satisfied by that run, a continuation waits.
      if (payload.trigger !== "schedule")
        await addEntryJob(helpers, entry, payload.trigger, "retry", new Date(Date.now() + LOCKED_RETRY_MS));
      return;
    }
    if (result.more) {
      await addEntryJob(helpers, entry, "continue", "continue");
      return;
    }
    if (entry.schedule?.kind === "every" && payload.trigger !== "manual") {
      await scheduleEvery(helpers, entry);
    }
    if (result.status === "succeeded") {
      for (const next of config.entries) {
        if (next.after === entry.id && next.enabled) await addEntryJob(helpers, next, "after", "after");
      }
    }
    // A permanent failure (a refusal no retry fixes) is final: the next scheduled run tries again, not a retry.
    if (result.status === "failed" && entry.schedule?.kind !== "every" && !result.permanent) {
      const attempt = helpers.job.attempts;
      const maxAttempts = helpers.job.max_attempts;
      events?.emit("run:retry", {
        entry: entry.id,
        attempt,
        maxAttempts,
        error: result.error ?? "failed",
        nextAt: attempt < maxAttempts ? new Date(Date.now() + Math.exp(Math.min(attempt, 10)) * 1000) : null,
      });
      // Throwing hands the retry (exponential backoff) to graphile-worker.
      throw new Error(`entry ${entry.id}: ${result.error ?? "run failed"}`);
    }
  };

  const binTask: Task = async (rawPayload, helpers) => {
    const itemId = String((rawPayload as { item: string | number }).item);
    const signal = AbortSignal.any([helpers.abortSignal ?? stopController.signal, stopController.signal]);
    await handleBinItem({
      pool,
      itemId,
      kinds,
      states: binStates,
      signal,
      log,
      workerSchema: schema,
      configDir: config.dir,
      locks: binLocks,
      processId,
      deadAfterMs,
      ...(events ? { events } : {}),
    });
  };

  const graphileEvents = new EventEmitter() as WorkerEvents;
  const workerIds: string[] = [];
  // graphile-worker ≥ 0.17 locks jobs and queues with the worker *pool*'s id (`locked_by`),
  // so that is the id forceUnlockWorkers needs; the workers' own ids are kept too.
  graphileEvents.on("pool:create", ({ workerPool }) => {
    workerIds.push(workerPool.id);
  });
  graphileEvents.on("worker:create", ({ worker }) => {
    workerIds.push(worker.workerId);
  });
  graphileEvents.on("pool:listen:error", ({ error }) => events?.emit("engine:error", { error: toError(error), where: "listen" }));

  // Runs and bin items have worker pools of their own, so a scheduled entry never waits for a slot
  // behind a bin flood (test/bin-workers.test.ts, "a bin flood beside a scheduled entry").
  const concurrency = options.concurrency ?? config.worker.concurrency;
  const runnerOptions = {
    pgPool: pool,
    schema,
    concurrency,
    noHandleSignals: true,
    pollInterval: 2_000,
    logger: graphileLogger(log),
    events: graphileEvents,
    gracefulShutdownAbortTimeout: Math.max(0, config.worker.shutdownTimeoutMs - 1_000),
  };
  const binTasks: Record<string, Task> = { [BIN_TASK]: afterOutage(binTask) };
  for (const { kind } of kinds) binTasks[binKindTask(kind)] = binTasks[BIN_TASK]!;
  const entryRunner: Runner = await run({
    ...runnerOptions,
    taskList: { [ENTRY_TASK]: afterOutage(runEntryTask) },
    parsedCronItems: cronItems(config.entries),
  });
  const binRunner: Runner = await run({ ...runnerOptions, taskList: binTasks, parsedCronItems: [] }).catch(async (error: unknown) => {
    await entryRunner.stop().catch(() => {});
    throw error;
  });
  const runners = [entryRunner, binRunner];

  const heartbeat = startHeartbeat({
    pool,
    utils,
    processId,
    concurrency,
    workerIds: () => workerIds,
    kinds: kinds.map((k) => k.kind),
    workerSchema: schema,
    intervalMs: options.heartbeatMs ?? 5_000,
    deadAfterMs,
    onError: (error) => events?.emit("engine:error", { error, where: "heartbeat" }),
    log,
  });
  await heartbeat.ready;

  // Start-up work: `every` schedules (deduplicated across replicas by job key), runOnStart, pruning.
  for (const entry of config.entries) {
    if (!entry.enabled) continue;
    if (entry.schedule?.kind === "every") await scheduleEvery(utils, entry, "preserve_run_at");
    if (entry.runOnStart) await addEntryJob(utils, entry, "start", "start", undefined, {}, "preserve_run_at");
    if (entry.schedule) {
      const at = nextRunAt(entry.schedule);
      if (at) events?.emit("entry:schedule", { entry: entry.id, at });
    }
  }
  const prune = () =>
    pruneRuns(pool, config.runs.keepMs).catch((error: unknown) => events?.emit("engine:error", { error: toError(error), where: "prune" }));
  await prune();
  const pruneTimer = setInterval(prune, PRUNE_EVERY_MS);
  pruneTimer.unref();

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(pruneTimer);
      stopController.abort(new Error("worker shutdown"));
      await Promise.all(runners.map((r) => r.stop().catch(() => {})));
      await heartbeat.stop();
      await binLocks.close();
      for (const [, state] of binStates) await state.release();
      await utils.release();
    })();
    return stopping;
  };

  const promise = Promise.all(runners.map((r) => r.promise)).then(() => {});
  return { processId, stop, promise, utils };

  /**
   * graphile-worker records a task's failure after the task throws, does not retry a refused
   * connection, and a failure it cannot record ends the process (an unhandled rejection). A task
   * failing because the database went away (a restart) therefore waits for it to come back
   * before handing the job back for its retry, which resumes the run from its checkpoint.
   */
  function afterOutage(task: Task): Task {
    return async (payload, helpers) => {
      try {
        await task(payload, helpers);
      } catch (error) {
        await waitForDatabase(pool, stopController.signal, log);
        throw error;
      }
    };
  }

  async function recordUnstartedRun(entry: EntryConfig, trigger: RunTrigger, startedAt: Date, error: PurgerError): Promise<RunResult> {
    const durationMs = Date.now() - startedAt.getTime();
    const message = error.hint ? `${error.message}; ${error.hint}` : error.message;
    const runId = await insertFinishedRun(pool, {
      entry: entry.id,
      plugin: entry.plugin.name,
      trigger,
      dryRun: false,
      cutoff: new Date(startedAt.getTime() - (entry.retentionMs ?? 0)),
      startedAt,
      processId,
      status: "failed",
      processed: 0,
      batches: 0,
      tables: null,
      error: message,
      guard: null,
      durationMs,
    });
    events?.emit("run:finish", {
      runId,
      entry: entry.id,
      plugin: entry.plugin.name,
      status: "failed",
      dryRun: false,
      processed: 0,
      batches: 0,
      durationMs,
      error: message,
    });
    log.error({ event: "run:finish", entry: entry.id, runId, status: "failed", error: message }, "run failed before it started");
    return {
      status: "failed",
      runId,
      id: entry.id,
      plugin: entry.plugin.name,
      dryRun: false,
      processed: 0,
      batches: 0,
      durationMs,
      more: false,
      error: message,
    };
  }

  async function scheduleEvery(adder: JobAdder, entry: EntryConfig, mode: "replace" | "preserve_run_at" = "replace"): Promise<void> {
    const at = nextRunAt(entry.schedule!)!;
    const runAt = new Date(at.getTime() + jitterDelay(entry));
    await addEntryJob(adder, entry, "schedule", "every", runAt, { jittered: true }, mode);
    events?.emit("entry:schedule", { entry: entry.id, at: runAt });
  }
}

type JobAdder = Pick<JobHelpers, "addJob"> | WorkerUtils;

async function addEntryJob(
  adder: JobAdder,
  entry: EntryConfig,
  trigger: RunTrigger,
  reason: Parameters<typeof entryJobKey>[1],
  runAt?: Date,
  extra: Partial<EntryPayload> = {},
  jobKeyMode: "replace" | "preserve_run_at" = "replace",
): Promise<void> {
  await adder.addJob(ENTRY_TASK, { entry: entry.id, trigger, ...extra } satisfies EntryPayload, {
    queueName: entryQueue(entry.id),
    jobKey: entryJobKey(entry.id, reason),
    jobKeyMode,
    maxAttempts: 5,
    ...(runAt ? { runAt } : {}),
  });
}

/** Ask a running cluster to run an entry now (the job is taken by any worker). */
export async function requestRun(utils: WorkerUtils, entry: EntryConfig): Promise<void> {
  await addEntryJob(utils, entry, "manual", "start");
}

/** Resolves once `SELECT 1` succeeds (at once when the database is up), or when `signal` aborts. */
async function waitForDatabase(pool: pg.Pool, signal: AbortSignal, log: Logger): Promise<void> {
  let since: number | null = null;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      await pool.query("SELECT 1");
      if (since !== null) log.info({ outageMs: Date.now() - since }, "the database is reachable again");
      return;
    } catch (error) {
      if (since === null) {
        since = Date.now();
        log.warn({ error: errorMessage(error) }, "the database is unreachable: waiting for it before retrying the job");
      }
      if (signal.aborted) return;
      await sleep(delay, undefined, { signal }).catch(() => {});
    }
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(errorMessage(error));
}

/** graphile-worker's logger, forwarding to purger's (its debug chatter dropped). */
export function graphileLogger(log: Logger): GraphileLogger {
  return new GraphileLogger(() => (level, message, meta) => {
    if (level === "error") log.error({ source: "graphile-worker", ...(meta ?? {}) }, message);
    else if (level === "warning") log.warn({ source: "graphile-worker", ...(meta ?? {}) }, message);
  });
}
