/**
 * Handling one bin item (the `purger:bin` task). Retries are purger's own —
 * exponential backoff with jitter through a delayed job — so the item's
 * visible state in `purger.bin` is exact: pending, done, or failed after its
 * last attempt.
 */
import type pg from "pg";
import { isPurgerError, PurgerError } from "../errors.js";
import type { PurgerEventEmitter } from "../events.js";
import type { Logger } from "../log.js";
import type { BinContext, Json } from "../plugin.js";
import { addBinJob, findKind, getBinItem, validatePayload, type BinKind } from "./bin.js";
import { errorMessage } from "./run-entry.js";
import { databaseNow } from "./clock.js";

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
}

const MAX_BACKOFF_MS = 3_600_000;

/** Backoff before attempt `attempt + 1`: 2^attempt s (1 s, 2 s, 4 s … capped at 1 h), ±25 % jitter. */
export function binBackoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempt - 1));
  return Math.round(base * (0.75 + random() * 0.5));
}

export async function handleBinItem(options: HandleBinItemOptions): Promise<void> {
  const { pool, itemId, events } = options;
  const item = await getBinItem(pool, itemId);
  if (!item || item.status !== "pending") return;
  const log = options.log.child({ binItem: itemId, kind: item.kind });
  const kind = findKind(options.kinds, item.kind);
  const entryId = kind?.entry.id ?? item.kind.split(".")[0] ?? item.kind;
  const attempt = item.attempts + 1;
  await pool.query("UPDATE purger.bin SET attempts = $2, updated_at = now() WHERE id = $1", [itemId, attempt]);
  events?.emit("bin:item:start", { itemId, kind: item.kind, entry: entryId, attempt });
  const started = performance.now();

  const fail = async (error: unknown, final: boolean) => {
    const message = errorMessage(error);
    if (final || attempt >= item.maxAttempts) {
      await pool.query("UPDATE purger.bin SET status = 'failed', last_error = $2, updated_at = now(), finished_at = now() WHERE id = $1", [
        itemId,
        message,
      ]);
      events?.emit("bin:item:fail", { itemId, kind: item.kind, entry: entryId, attempt, final: true, error: message });
      log.error({ event: "bin:item:fail", attempt, error: message, final: true }, "bin item failed for good");
    } else {
      const delay = binBackoffMs(attempt);
      await pool.query("UPDATE purger.bin SET last_error = $2, updated_at = now() WHERE id = $1", [itemId, message]);
      await addBinJob(pool, options.workerSchema, itemId, new Date(Date.now() + delay));
      events?.emit("bin:item:fail", { itemId, kind: item.kind, entry: entryId, attempt, final: false, error: message });
      log.warn({ event: "bin:item:fail", attempt, error: message, retryInMs: delay }, "bin item failed; will retry");
    }
  };

  if (!kind) {
    await fail(new PurgerError("PAYLOAD", `no entry of this process's purger.yaml handles kind "${item.kind}"`), false);
    return;
  }
  let payload: Record<string, Json>;
  try {
    payload = validatePayload(kind, item.payload);
  } catch (error) {
    await fail(error, true);
    return;
  }

  const entry = kind.entry;
  const signal = AbortSignal.any([options.signal, AbortSignal.timeout(entry.timeoutMs)]);
  const baseContext = {
    entry: {
      id: entry.id,
      retentionMs: entry.retentionMs,
      batchSize: typeof entry.batchSize === "number" ? entry.batchSize : entry.batchSize.initial,
      configDir: options.configDir,
    },
    options: entry.options,
    pool,
    log,
    signal,
  };
  let processed = Number(item.processed);
  const ctx: BinContext<unknown, unknown> = {
    ...baseContext,
    state: undefined,
    startedAt: await databaseNow(pool),
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
      processed = done;
      await pool.query("UPDATE purger.bin SET checkpoint = $2::jsonb, processed = $3, updated_at = now() WHERE id = $1", [
        itemId,
        JSON.stringify(checkpoint),
        done,
      ]);
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
      await pool.query("UPDATE purger.bin SET processed = $2, attempts = attempts - 1, updated_at = now() WHERE id = $1", [
        itemId,
        processed,
      ]);
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
    await pool.query(
      "UPDATE purger.bin SET status = 'done', processed = $2, last_error = NULL, updated_at = now(), finished_at = now() WHERE id = $1",
      [itemId, processed],
    );
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
    if (options.signal.aborted) {
      // Shutdown: the item stays pending and is taken again (by this or another process).
      await pool.query("UPDATE purger.bin SET attempts = attempts - 1 WHERE id = $1", [itemId]);
      await addBinJob(pool, options.workerSchema, itemId);
      return;
    }
    await fail(error, isPurgerError(error, "PAYLOAD") || isPurgerError(error, "CONFIG"));
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
        if (plugin.release) await plugin.release(await state.catch(() => undefined));
      },
    };
    options.states.set(entry.id, cached);
    state.catch(() => options.states.delete(entry.id));
  }
  return cached.state;
}
