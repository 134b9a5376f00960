/**
 * The run loop: one entry, batch after batch, each batch in its own
 * transaction together with its checkpoint. A run is made of slices: a slice
 * works at most `timeout` and stops at a batch boundary; `sliced` callers (the
 * worker) then return so other entries get their turn, others (`once`) go on
 * with the next slice at once.
 */
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import type { EntryConfig } from "../config/types.js";
import { PurgerError } from "../errors.js";
import { isPermanent } from "../sdk/permanent.js";
import type { PurgerEventEmitter, RunStatus, RunTrigger } from "../events.js";
import { silentLogger, type Logger } from "../log.js";
import type { BatchResult, Cursor, RunContext } from "../plugin.js";
import { lockHolder, tryLockEntry, unlockEntry } from "./lock.js";
import { adaptBatchSize, initialBatchSize } from "./batch-size.js";
import { checkGuard } from "./guard.js";
import { databaseNow } from "./clock.js";
import { fingerprintChanges, runFingerprint } from "./fingerprint.js";
import {
  claimRun,
  finishRun,
  findResumableRun,
  insertFinishedRun,
  insertRun,
  markGuardPassed,
  saveCheckpoint,
  setRunTotal,
  type RunRecord,
} from "./runs.js";

/**
 * How a dry run changes nothing. `rollback`: the real batches, each rolled back — the same
 * statements as a real run, so it counts exactly, but triggers fire and row locks are held
 * while a batch lasts. `count`: only the plugin's `count` hook — reads, no row locks, no
 * triggers; `processed` is that count.
 */
export type DryRunMode = "rollback" | "count";

export interface RunEntryOptions {
  pool: pg.Pool;
  entry: EntryConfig;
  trigger: RunTrigger;
  /**
   * Change nothing: `true` is `"rollback"` (see {@link DryRunMode}).
   * @defaultValue false
   */
  dryRun?: boolean | DryRunMode;
  /** Return after one slice with `more: true` when work remains (the worker); otherwise run slices back to back. */
  sliced?: boolean;
  /** Another process runs the entry: wait for it (`once`), give up at once (`skip`, the worker), or throw LOCKED (`fail`). */
  onLocked: "wait" | "skip" | "fail";
  /** What an abort means: `suspend` leaves the run resumable (worker shutdown), `interrupt` ends it as interrupted (`once`). */
  onAbort?: "suspend" | "interrupt";
  signal?: AbortSignal;
  events?: PurgerEventEmitter;
  log?: Logger;
  /** Identifies this process in run records. */
  processId?: string;
  /** Fixes the run's clock (tests). Default: the database's clock, read on the run's connection, never the host's. */
  now?: () => Date;
  /** Directory of the config file (plugins resolve relative paths from it). */
  configDir?: string;
  /** Polled between batches; while true the run waits at the batch boundary. */
  isPaused?: () => boolean;
}

export interface RunResult {
  /** `locked`: another process runs the entry and `onLocked` was `skip`. */
  status: Exclude<RunStatus, "running"> | "locked" | "suspended";
  runId: string | null;
  id: string;
  plugin: string;
  dryRun: boolean;
  processed: number;
  batches: number;
  durationMs: number;
  /** A slice ended (or the worker shut down) with work left: continue the run later. */
  more: boolean;
  tables?: Record<string, number>;
  sample?: string[];
  error?: string;
  /** The failure was permanent (`permanent()`, `PAYLOAD`, `CONFIG`): the worker does not retry the run. */
  permanent?: true;
  guard?: string;
  cutoff?: string;
  /** How a dry run worked; `count`: `processed` is the plugin's count, no batch ran. */
  dryRunMode?: DryRunMode;
  /** A dry run: the unfinished run of the entry that a real run would resume (`fingerprintMatches`) or supersede. */
  resumable?: ResumableRun;
  /** The unfinished run this run replaced because the entry's config changed since it started. */
  superseded?: { runId: string; reason: string };
}

export interface ResumableRun {
  runId: string;
  cutoff: string | null;
  processed: number;
  /** The entry's config still matches the run's: a real run resumes it with its cutoff and checkpoint. */
  fingerprintMatches: boolean;
  /** What changed when it does not match. */
  changes: string[];
}

const SAMPLE_SIZE = 10;
const LOCK_POLL_MS = 250;
const PAUSE_POLL_MS = 200;
/** `count`'s cap in a count-only dry run: none, in effect (still a valid bigint parameter). */
const COUNT_ALL = Number.MAX_SAFE_INTEGER;

export async function runEntry(options: RunEntryOptions): Promise<RunResult> {
  const { pool, entry } = options;
  const plugin = entry.plugin;
  const dryRunMode: DryRunMode | null = options.dryRun === true ? "rollback" : options.dryRun ? options.dryRun : null;
  const dryRun = dryRunMode !== null;
  const signal = options.signal ?? new AbortController().signal;
  const events = options.events;
  const processId = options.processId ?? `${hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const log = (options.log ?? silentLogger).child({ entry: entry.id });
  const base = { runId: null, id: entry.id, plugin: plugin.name, dryRun, processed: 0, batches: 0, durationMs: 0, more: false };

  if (!plugin.batch) {
    return { ...base, status: "succeeded" };
  }
  if (dryRunMode === "count" && !plugin.count) {
    throw new PurgerError("USAGE", `plugin ${plugin.name} cannot count what qualifies, so entry "${entry.id}" has no count-only dry run`, {
      hint: "use --dry-run: it runs the batches and rolls each back",
    });
  }

  const client = await pool.connect();
  let locked = false;
  try {
    locked = await acquireLock(client, options, signal);
    if (!locked) {
      if (signal.aborted) return { ...base, status: "interrupted" };
      return { ...base, status: "locked" };
    }

    const baseContext = { entry: entryInfo(entry, options), options: entry.options, pool, log, signal };
    const state = plugin.prepare ? await plugin.prepare(baseContext) : undefined;
    try {
      return await runLoop({ options, client, state, dryRunMode, signal, events, processId, log, baseContext });
    } finally {
      if (plugin.release) await plugin.release(state);
    }
  } finally {
    if (locked) await unlockEntry(client, entry.id).catch(() => {});
    client.release();
  }
}

interface LoopInput {
  options: RunEntryOptions;
  client: pg.PoolClient;
  state: unknown;
  dryRunMode: DryRunMode | null;
  signal: AbortSignal;
  events: PurgerEventEmitter | undefined;
  processId: string;
  log: Logger;
  baseContext: Omit<RunContext<unknown, unknown>, "cutoff" | "startedAt" | "dryRun" | "batchSize" | "state">;
}

async function runLoop(input: LoopInput): Promise<RunResult> {
  const { options, client, dryRunMode, signal, events, processId, log } = input;
  const dryRun = dryRunMode !== null;
  const { entry, trigger } = options;
  const plugin = entry.plugin;
  const batch = plugin.batch!;
  const clock = options.now;
  const sliceNow = clock ? clock() : await databaseNow(client);
  const sliceStart = performance.now();

  // An unfinished run (an earlier slice, or a process that died) resumes with its cutoff and checkpoint,
  // but only while what decided it is unchanged: otherwise a new run replaces it, under the new config and guard.
  const fingerprint = runFingerprint(entry);
  const unfinished = await findResumableRun(client, entry.id);
  const changes = unfinished ? fingerprintChanges(unfinished.fingerprint, fingerprint) : [];
  const superseded = unfinished && changes.length > 0 && !dryRun ? await supersede(input, unfinished, changes, sliceNow) : undefined;
  const resumed = unfinished && changes.length === 0 && !dryRun ? unfinished : null;
  const resumable: ResumableRun | undefined =
    dryRun && unfinished
      ? {
          runId: unfinished.id,
          cutoff: unfinished.cutoff?.toISOString() ?? null,
          processed: unfinished.processed,
          fingerprintMatches: changes.length === 0,
          changes,
        }
      : undefined;
  const startedAt = resumed?.startedAt ?? sliceNow;
  const cutoff = resumed?.cutoff ?? new Date(startedAt.getTime() - (entry.retentionMs ?? 0));
  // Both ends on the same clock: the run's start was read from it, by this or an earlier slice.
  const earlierMs = sliceNow.getTime() - startedAt.getTime();
  let batchSize = initialBatchSize(entry.batchSize);
  const runContext: RunContext<unknown, unknown> = {
    ...input.baseContext,
    cutoff,
    startedAt,
    dryRun,
    batchSize,
    state: input.state,
  };

  let processed = resumed?.processed ?? 0;
  let batches = resumed?.batches ?? 0;
  let tables: Record<string, number> | null = resumed?.tables ?? null;
  let cursor: Cursor | null = resumed?.checkpoint ?? null;
  const sample: string[] = [];
  const elapsed = () => earlierMs + (performance.now() - sliceStart);

  let runId: string | null = resumed?.id ?? null;
  const finish = async (
    status: Exclude<RunStatus, "running">,
    extra: { error?: string; guard?: string; permanent?: true } = {},
  ): Promise<RunResult> => {
    const durationMs = Math.round(elapsed());
    const end = { status, processed, batches, tables, error: extra.error ?? null, guard: extra.guard ?? null, durationMs };
    if (dryRun) {
      runId = await insertFinishedRun(client, {
        entry: entry.id,
        plugin: plugin.name,
        trigger,
        dryRun,
        cutoff,
        startedAt,
        processId,
        ...end,
      });
    } else if (runId !== null) {
      await finishRun(client, runId, end);
    }
    const result: RunResult = {
      status,
      runId,
      id: entry.id,
      plugin: plugin.name,
      dryRun,
      processed,
      batches,
      durationMs,
      more: false,
      cutoff: cutoff.toISOString(),
      ...(tables ? { tables } : {}),
      ...(dryRunMode ? { sample, dryRunMode } : {}),
      ...(resumable ? { resumable } : {}),
      ...(superseded ? { superseded } : {}),
      ...extra,
    };
    events?.emit("run:finish", {
      runId: runId ?? "",
      entry: entry.id,
      plugin: plugin.name,
      status,
      dryRun,
      processed,
      batches,
      durationMs,
      ...(tables ? { tables } : {}),
      ...(dryRun ? { sample } : {}),
      ...extra,
    });
    log.info({ event: "run:finish", runId, status, processed, batches, durationMs, ...extra }, `run ${status}`);
    return result;
  };

  if (resumed) {
    runId = resumed.id;
  } else if (!dryRun) {
    runId = await insertRun(client, {
      entry: entry.id,
      plugin: plugin.name,
      trigger,
      dryRun,
      cutoff,
      startedAt,
      processId,
      fingerprint,
      guardPassed: entry.guard === null,
    });
  }

  let total: number | null = null;
  try {
    // A run whose process died during its guard's count has no mark: count again before any change.
    if (entry.guard && (resumed === null || !resumed.guardPassedAt)) {
      const verdict = await checkGuard(plugin, runContext, entry.guard);
      if (verdict) return await finish("guarded", { guard: verdict });
      if (runId !== null) await markGuardPassed(client, runId);
    }
    if (plugin.estimate && dryRunMode !== "count") {
      const left = await plugin.estimate({
        ...runContext,
        progress: (done, total) => events?.emit("run:estimate:progress", { runId, entry: entry.id, done, total: total ?? null }),
      });
      total = left === null ? null : left + processed;
    }
    if (runId !== null) {
      if (resumed) await claimRun(client, runId, processId, total);
      else if (total !== null) await setRunTotal(client, runId, total);
    }
  } catch (error) {
    return await finish("failed", failure(error));
  }

  const sliceStarts = (continued: boolean): void => {
    events?.emit("run:start", {
      runId: runId ?? "",
      entry: entry.id,
      plugin: plugin.name,
      trigger,
      dryRun,
      cutoff,
      total,
      done: processed,
      resumed: continued,
      ...(superseded && !continued ? { superseded } : {}),
    });
    log.info(
      { event: "run:start", runId, trigger, dryRun, cutoff, total, resumed: continued },
      continued ? "run continued" : "run started",
    );
  };
  sliceStarts(resumed !== null);

  if (dryRunMode === "count") {
    try {
      processed = await plugin.count!(runContext, COUNT_ALL);
    } catch (error) {
      return await finish("failed", failure(error));
    }
    return await finish("succeeded");
  }

  // The run stays `running` with its checkpoint; the next slice (any process) resumes it.
  const suspend = (): RunResult => ({
    status: "suspended",
    runId,
    id: entry.id,
    plugin: plugin.name,
    dryRun,
    processed,
    batches,
    durationMs: Math.round(elapsed()),
    more: true,
    ...(superseded ? { superseded } : {}),
  });
  let sliceDeadline = performance.now() + entry.timeoutMs;
  let sliceProcessed = 0;
  // Every slice does at least one batch: a slice that only claimed and suspended (a timeout shorter than the
  // start-up, a loaded machine) would make no progress at all.
  let sliceBatches = 0;
  for (;;) {
    if (signal.aborted) {
      if ((options.onAbort ?? "suspend") === "suspend" && !dryRun) {
        return suspend();
      }
      return await finish("interrupted", { error: "interrupted" });
    }
    if (options.isPaused?.()) {
      events?.emit("entry:pause", { entry: entry.id, paused: true });
      while (options.isPaused() && !signal.aborted) await sleep(PAUSE_POLL_MS);
      events?.emit("entry:pause", { entry: entry.id, paused: false });
      continue;
    }
    if (sliceBatches > 0 && performance.now() >= sliceDeadline) {
      events?.emit("run:slice:end", { runId: runId ?? "", entry: entry.id, done: processed });
      if (options.sliced && !dryRun) {
        return suspend();
      }
      if (runId !== null) await claimRun(client, runId, processId, null);
      sliceDeadline = performance.now() + entry.timeoutMs;
      sliceBatches = 0;
      // The next slice, in this same call: it starts like one taken up by a worker (see packages/core/test/sdk-contracts.test.ts).
      sliceStarts(true);
    }

    const batchStart = performance.now();
    let result: BatchResult;
    try {
      await client.query("BEGIN");
      const deadline = new Date(Date.now() + (sliceDeadline - performance.now()));
      result = await batch({ ...runContext, batchSize, client, cursor, deadline });
      if (dryRun) {
        await client.query("ROLLBACK");
      } else {
        await saveCheckpoint(client, runId!, {
          processed: result.processed,
          checkpoint: result.cursor ?? null,
          tables: result.tables ? mergeTables(tables, result.tables) : null,
        });
        await client.query("COMMIT");
      }
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      // A batch that throws because the run's signal fired (shutdown, cancel) did not fail: the rolled-back batch is
      // taken again from the checkpoint, as the loop's abort check decides (test/abort.test.ts).
      if (signal.aborted) continue;
      return await finish("failed", failure(error));
    }
    const batchMs = performance.now() - batchStart;
    processed += result.processed;
    sliceProcessed += result.processed;
    sliceBatches += 1;
    batches += 1;
    cursor = result.cursor ?? null;
    if (result.tables) tables = mergeTables(tables, result.tables);
    if (result.sample && sample.length < SAMPLE_SIZE) sample.push(...result.sample.slice(0, SAMPLE_SIZE - sample.length));
    const sliceSeconds = (performance.now() - sliceStart) / 1000;
    events?.emit("run:batch:done", {
      runId: runId ?? "",
      entry: entry.id,
      processed: result.processed,
      done: processed,
      total,
      batches,
      batchMs,
      rate: sliceSeconds > 0 ? sliceProcessed / sliceSeconds : 0,
      elapsedMs: elapsed(),
      batchSize,
    });
    const done = result.done ?? result.processed === 0;
    if (done) return await finish("succeeded");
    batchSize = adaptBatchSize(entry.batchSize, batchSize, result.processed, batchMs);
  }
}

/** End an unfinished run whose entry's config changed; returns what the new run reports about it. */
async function supersede(input: LoopInput, run: RunRecord, changes: string[], now: Date): Promise<{ runId: string; reason: string }> {
  const { client, events, log, options } = input;
  const reason = `run ${run.id} cannot be resumed under the entry's current config (${changes.join("; ")}); a new run replaces it`;
  const durationMs = Math.max(0, now.getTime() - run.startedAt.getTime());
  await finishRun(client, run.id, {
    status: "superseded",
    processed: run.processed,
    batches: run.batches,
    tables: run.tables,
    error: reason,
    guard: null,
    durationMs,
  });
  events?.emit("run:finish", {
    runId: run.id,
    entry: options.entry.id,
    plugin: run.plugin,
    status: "superseded",
    dryRun: false,
    processed: run.processed,
    batches: run.batches,
    durationMs,
    ...(run.tables ? { tables: run.tables } : {}),
    error: reason,
  });
  log.warn({ event: "run:finish", runId: run.id, status: "superseded", processed: run.processed, changes }, `run superseded: ${reason}`);
  return { runId: run.id, reason };
}

async function acquireLock(client: pg.PoolClient, options: RunEntryOptions, signal: AbortSignal): Promise<boolean> {
  const id = options.entry.id;
  if (await tryLockEntry(client, id)) return true;
  if (options.onLocked === "skip") return false;
  const holder = await lockHolder(options.pool, id);
  if (options.onLocked === "fail") {
    throw new PurgerError("LOCKED", `entry "${id}" is running in another process${holder ? `: ${holder}` : ""}`, {
      hint: "wait for it to finish, or run without --no-wait to wait for it",
    });
  }
  options.events?.emit("run:lock:wait", { entry: id, holder });
  options.log?.info({ event: "run:lock:wait", entry: id, holder }, "waiting for another process running this entry");
  while (!signal.aborted) {
    await sleep(LOCK_POLL_MS, undefined, { signal }).catch(() => {});
    if (await tryLockEntry(client, id)) return true;
  }
  return false;
}

function entryInfo(entry: EntryConfig, options: RunEntryOptions) {
  return {
    id: entry.id,
    retentionMs: entry.retentionMs,
    configDir: options.configDir ?? process.cwd(),
  };
}

function mergeTables(into: Record<string, number> | null, add: Record<string, number>): Record<string, number> {
  const merged = { ...(into ?? {}) };
  for (const [table, count] of Object.entries(add)) merged[table] = (merged[table] ?? 0) + count;
  return merged;
}

/** What `finish` records of a failure; a permanent one is marked so the worker does not retry it. */
function failure(error: unknown): { error: string; permanent?: true } {
  return isPermanent(error) ? { error: errorMessage(error), permanent: true } : { error: errorMessage(error) };
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
