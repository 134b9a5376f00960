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
import type { PurgerEventEmitter, RunStatus, RunTrigger } from "../events.js";
import { silentLogger, type Logger } from "../log.js";
import type { BatchResult, Cursor, RunContext } from "../plugin.js";
import { lockHolder, tryLockEntry, unlockEntry } from "./lock.js";
import { adaptBatchSize, initialBatchSize } from "./batch-size.js";
import { checkGuard } from "./guard.js";
import { claimRun, finishRun, findResumableRun, insertFinishedRun, insertRun, saveCheckpoint, setRunTotal } from "./runs.js";

export interface RunEntryOptions {
  pool: pg.Pool;
  entry: EntryConfig;
  trigger: RunTrigger;
  dryRun?: boolean;
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
  /** The clock (tests fix it). */
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
  guard?: string;
  cutoff?: string;
}

const SAMPLE_SIZE = 10;
const LOCK_POLL_MS = 250;
const PAUSE_POLL_MS = 200;

export async function runEntry(options: RunEntryOptions): Promise<RunResult> {
  const { pool, entry } = options;
  const plugin = entry.plugin;
  const dryRun = options.dryRun ?? false;
  const signal = options.signal ?? new AbortController().signal;
  const events = options.events;
  const now = options.now ?? (() => new Date());
  const processId = options.processId ?? `${hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const log = (options.log ?? silentLogger).child({ entry: entry.id });
  const base = { runId: null, id: entry.id, plugin: plugin.name, dryRun, processed: 0, batches: 0, durationMs: 0, more: false };

  if (!plugin.batch) {
    return { ...base, status: "succeeded" };
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
      return await runLoop({ options, client, state, dryRun, signal, events, now, processId, log, baseContext });
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
  dryRun: boolean;
  signal: AbortSignal;
  events: PurgerEventEmitter | undefined;
  now: () => Date;
  processId: string;
  log: Logger;
  baseContext: Omit<RunContext<unknown, unknown>, "cutoff" | "startedAt" | "dryRun" | "batchSize" | "state">;
}

async function runLoop(input: LoopInput): Promise<RunResult> {
  const { options, client, dryRun, signal, events, processId, log } = input;
  const { entry, trigger } = options;
  const plugin = entry.plugin;
  const batch = plugin.batch!;

  // Resume an unfinished run (an earlier slice, or a process that died) with its cutoff and checkpoint.
  const resumed = dryRun ? null : await findResumableRun(client, entry.id);
  const startedAt = resumed?.startedAt ?? input.now();
  const cutoff = resumed?.cutoff ?? new Date(startedAt.getTime() - (entry.retentionMs ?? 0));
  const sliceStart = performance.now();
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
  const elapsed = () => (resumed ? Date.now() - startedAt.getTime() : performance.now() - sliceStart);

  let runId: string | null = resumed?.id ?? null;
  const finish = async (status: Exclude<RunStatus, "running">, extra: { error?: string; guard?: string } = {}): Promise<RunResult> => {
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
      ...(dryRun ? { sample } : {}),
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
    runId = await insertRun(client, { entry: entry.id, plugin: plugin.name, trigger, dryRun, cutoff, startedAt, processId });
  }

  let total: number | null = null;
  try {
    if (!resumed && entry.guard) {
      const verdict = await checkGuard(plugin, runContext, entry.guard);
      if (verdict) return await finish("guarded", { guard: verdict });
    }
    if (plugin.estimate) {
      const left = await plugin.estimate(runContext);
      total = left === null ? null : left + processed;
    }
    if (runId !== null) {
      if (resumed) await claimRun(client, runId, processId, total);
      else if (total !== null) await setRunTotal(client, runId, total);
    }
  } catch (error) {
    return await finish("failed", { error: errorMessage(error) });
  }

  events?.emit("run:start", {
    runId: runId ?? "",
    entry: entry.id,
    plugin: plugin.name,
    trigger,
    dryRun,
    cutoff,
    total,
    done: processed,
    resumed: resumed !== null,
  });
  log.info({ event: "run:start", runId, trigger, dryRun, cutoff, total, resumed: resumed !== null }, "run started");

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
  });
  let sliceDeadline = performance.now() + entry.timeoutMs;
  let sliceProcessed = 0;
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
    if (performance.now() >= sliceDeadline) {
      events?.emit("run:slice:end", { runId: runId ?? "", entry: entry.id, done: processed });
      if (options.sliced && !dryRun) {
        return suspend();
      }
      if (runId !== null) await claimRun(client, runId, processId, null);
      sliceDeadline = performance.now() + entry.timeoutMs;
    }

    const batchStart = performance.now();
    let result: BatchResult;
    try {
      await client.query("BEGIN");
      result = await batch({ ...runContext, batchSize, client, cursor });
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
      return await finish("failed", { error: errorMessage(error) });
    }
    const batchMs = performance.now() - batchStart;
    processed += result.processed;
    sliceProcessed += result.processed;
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
    batchSize: initialBatchSize(entry.batchSize),
    configDir: options.configDir ?? process.cwd(),
  };
}

function mergeTables(into: Record<string, number> | null, add: Record<string, number>): Record<string, number> {
  const merged = { ...(into ?? {}) };
  for (const [table, count] of Object.entries(add)) merged[table] = (merged[table] ?? 0) + count;
  return merged;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
