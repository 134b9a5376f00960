/**
 * Handling one bin item (the `purger:bin` task, and `purger:bin:<kind>` for
 * an item left by a worker that does not know its kind). One handler at a
 * time per item (bin-lock.ts). Retries are purger's own —
 * exponential backoff with jitter through a delayed job — so the item's
 * visible state in `purger.bin` is exact: pending, done, or failed after its
 * last attempt.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { PurgerError } from "../errors.js";
import { isPermanent } from "../sdk/permanent.js";
import type { PurgerEventEmitter } from "../events.js";
import type { Logger } from "../log.js";
import type { BinContext, Json } from "../plugin.js";
import {
  addBinJob,
  claimBinItem,
  findKind,
  getBinItem,
  liveWorkerKnows,
  parkBinItem,
  unknownKindMessage,
  validatePayload,
  type BinKind,
} from "./bin.js";
import type { BinItemLock, BinItemLocks } from "./bin-lock.js";
import { errorMessage } from "./run-entry.js";
import { initialBatchSize } from "./batch-size.js";

export type BinStateCache = Map<string, { state: Promise<unknown>; release(): Promise<void> }>;

export interface HandleBinItemOptions {
  pool: pg.Pool;
  itemId: string;
  kinds: BinKind[];
  states: BinStateCache;
  signal: AbortSignal;
  log: Logger;
  workerSchema: string;
  configDir: string;
  events?: PurgerEventEmitter;
  /** This process's item locks: one handler per item across the cluster. */
  locks: BinItemLocks;
  /** This process's id in `purger.processes`. */
  processId: string;
  /** Silence after which a process counts as dead (whether a live worker knows a kind). */
  deadAfterMs: number;
}

const MAX_BACKOFF_MS = 3_600_000;
const BUSY_RECHECK_MS = 5_000;

/** Backoff before attempt `attempt + 1`: 2^attempt s (1 s, 2 s, 4 s … capped at 1 h), ±25 % jitter. */
export function binBackoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempt - 1));
  return Math.round(base * (0.75 + random() * 0.5));
}

export async function handleBinItem(options: HandleBinItemOptions): Promise<void> {
  const { pool, itemId } = options;
  const found = await getBinItem(pool, itemId);
  if (!found || found.status !== "pending") return;
  const kind = findKind(options.kinds, found.kind);
  if (!kind) {
    await leaveForAnotherWorker(options, found.kind);
    return;
  }
  const lock = await options.locks.tryLock(itemId);
  if (!lock) {
    // Another handler has it. Look again later, in case that one dies before it finishes.
    await addBinJob(pool, options.workerSchema, itemId, new Date(Date.now() + BUSY_RECHECK_MS));
    return;
  }
  try {
    await handleClaimed(options, kind, lock);
  } finally {
    await lock.release();
  }
}

/**
 * A kind this process's config lacks (a rolling deploy: a newer config registered it) costs the item
 * no attempt: it goes to the kind's own task, which only workers that know the kind take, or, when no
 * live worker knows it, it waits without a job, visibly, until one starts (see `unparkBinItems`).
 */
async function leaveForAnotherWorker(options: HandleBinItemOptions, kind: string): Promise<void> {
  const { pool, itemId } = options;
  if (await liveWorkerKnows(pool, options.processId, kind, options.deadAfterMs)) {
    await addBinJob(pool, options.workerSchema, itemId, undefined, kind);
    options.log.info({ binItem: itemId, kind }, "bin item of a kind this process does not know: left to a worker that knows it");
  } else {
    await parkBinItem(pool, itemId, kind);
    options.log.warn({ binItem: itemId, kind }, unknownKindMessage(kind));
  }
}

async function handleClaimed(options: HandleBinItemOptions, kind: BinKind, lock: BinItemLock): Promise<void> {
  const { pool, itemId, events } = options;
  const claim = `${options.processId}/${randomUUID().slice(0, 8)}`;
  const claimed = await claimBinItem(pool, itemId, claim);
  if (!claimed) return;
  const { item, claimedAt } = claimed;
  const log = options.log.child({ binItem: itemId, kind: item.kind });
  const entry = kind.entry;
  const attempt = item.attempts;
  // Every write of this handler checks its claim: a handler that lost the item overwrites nothing.
  let lost = false;
  const owned = async (sql: string, values: unknown[] = []): Promise<boolean> => {
    const { rowCount } = await pool.query(`${sql} WHERE id = $1 AND claimed_by = $2`, [itemId, claim, ...values]);
    if ((rowCount ?? 0) > 0) return true;
    if (!lost) log.warn({ event: "bin:item:lost" }, "another handler took this bin item over; this handler's outcome is dropped");
    lost = true;
    return false;
  };
  // The lock died with its connection: the item may be free for another process, so it needs a job now.
  lock.signal.addEventListener("abort", () => {
    addBinJob(pool, options.workerSchema, itemId).catch((error: unknown) =>
      log.warn({ error: errorMessage(error) }, "could not re-add the job of a bin item whose lock was lost"),
    );
  });
  events?.emit("bin:item:start", { itemId, kind: item.kind, entry: entry.id, attempt });
  const started = performance.now();

  const fail = async (error: unknown, final: boolean) => {
    const message = errorMessage(error);
    if (final || attempt >= item.maxAttempts) {
      if (!(await owned("UPDATE purger.bin SET status = 'failed', last_error = $3, updated_at = now(), finished_at = now()", [message])))
        return;
      events?.emit("bin:item:fail", { itemId, kind: item.kind, entry: entry.id, attempt, final: true, error: message });
      log.error({ event: "bin:item:fail", attempt, error: message, final: true }, "bin item failed for good");
    } else {
      const delay = binBackoffMs(attempt);
      if (!(await owned("UPDATE purger.bin SET last_error = $3, updated_at = now()", [message]))) return;
      await addBinJob(pool, options.workerSchema, itemId, new Date(Date.now() + delay));
      events?.emit("bin:item:fail", { itemId, kind: item.kind, entry: entry.id, attempt, final: false, error: message });
      log.warn({ event: "bin:item:fail", attempt, error: message, retryInMs: delay }, "bin item failed; will retry");
    }
  };

  let payload: Record<string, Json>;
  try {
    payload = validatePayload(kind, item.payload);
  } catch (error) {
    await fail(error, true);
    return;
  }

  const signal = AbortSignal.any([options.signal, lock.signal, AbortSignal.timeout(entry.timeoutMs)]);
  const baseContext = {
    entry: { id: entry.id, retentionMs: entry.retentionMs, configDir: options.configDir },
    options: entry.options,
    pool,
    log,
    signal,
  };
  let processed = Number(item.processed);
  const ctx: BinContext<unknown, unknown> = {
    ...baseContext,
    state: undefined,
    startedAt: claimedAt,
    batchSize: initialBatchSize(entry.batchSize),
    item: { id: itemId, kind: item.kind, attempt, checkpoint: item.checkpoint },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn(client);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async saveCheckpoint(checkpoint, done) {
      if (
        !(await owned("UPDATE purger.bin SET checkpoint = $3::jsonb, processed = $4, updated_at = now()", [
          JSON.stringify(checkpoint),
          done,
        ]))
      ) {
        throw new PurgerError("LOCKED", `bin item ${itemId} was taken over by another handler`);
      }
      processed = done;
    },
    progress(done, total) {
      events?.emit("bin:item:progress", { itemId, kind: item.kind, entry: entry.id, done, total: total ?? null });
    },
  };

  try {
    ctx.state = await preparedState(options, entry, baseContext);
    const result = await kind.handler.handle(ctx, payload);
    processed = Math.max(processed, result.processed);
    if (result.done === false) {
      if (!(await owned("UPDATE purger.bin SET processed = $3, attempts = attempts - 1, updated_at = now()", [processed]))) return;
      await addBinJob(pool, options.workerSchema, itemId);
      events?.emit("bin:item:done", {
        itemId,
        kind: item.kind,
        entry: entry.id,
        processed,
        durationMs: performance.now() - started,
        finished: false,
      });
      return;
    }
    if (
      !(await owned("UPDATE purger.bin SET status = 'done', processed = $3, last_error = NULL, updated_at = now(), finished_at = now()", [
        processed,
      ]))
    ) {
      return;
    }
    events?.emit("bin:item:done", {
      itemId,
      kind: item.kind,
      entry: entry.id,
      processed,
      durationMs: performance.now() - started,
      finished: true,
    });
    log.info({ event: "bin:item:done", processed, durationMs: Math.round(performance.now() - started) }, "bin item handled");
  } catch (error) {
    if (options.signal.aborted || lock.signal.aborted) {
      // Shutdown or a lost lock: the item stays pending and is taken again (by this or another process).
      if (await owned("UPDATE purger.bin SET attempts = attempts - 1")) await addBinJob(pool, options.workerSchema, itemId);
      return;
    }
    await fail(error, isPermanent(error));
  }
}

/** A plugin's `prepare` runs once per entry per process for the bin; later items reuse it. */
async function preparedState(
  options: HandleBinItemOptions,
  entry: BinKind["entry"],
  ctx: Parameters<NonNullable<BinKind["entry"]["plugin"]["prepare"]>>[0],
): Promise<unknown> {
  const plugin = entry.plugin;
  if (!plugin.prepare) return undefined;
  let cached = options.states.get(entry.id);
  if (!cached) {
    const state = plugin.prepare({ ...ctx, signal: new AbortController().signal });
    cached = {
      state,
      async release() {
        // release() pairs with a prepare() that succeeded: a failed one has nothing to release.
        const prepared = await state.then(
          (value) => ({ ok: true as const, value }),
          () => ({ ok: false as const }),
        );
        if (plugin.release && prepared.ok) await plugin.release(prepared.value);
      },
    };
    options.states.set(entry.id, cached);
    state.catch(() => options.states.delete(entry.id));
  }
  return cached.state;
}
