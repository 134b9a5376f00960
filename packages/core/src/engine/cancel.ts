/**
 * Abandoning an unfinished run (`purger runs cancel`): it ends `cancelled`
 * and is never resumed; the entry's next run starts afresh, with a new cutoff
 * and its guard. Done under the entry's lock, so a run that some process is
 * working on right now cannot be cancelled under its feet.
 */
import type pg from "pg";
import { PurgerError } from "../errors.js";
import { quoteIdent } from "../db/quote.js";
import { databaseNow } from "./clock.js";
import { lockHolder, tryLockEntry, unlockEntry } from "./lock.js";
import { findResumableRun, finishRun, type RunRecord } from "./runs.js";
import { entryJobKey } from "./schedule.js";

export interface CancelRunOptions {
  pool: pg.Pool;
  /** The entry's id. */
  entry: string;
  /** graphile-worker's schema: the service's pending continuation of the run is removed too, so it does not start a new run. */
  workerSchema?: string;
  /**
   * Recorded as the run's error.
   * @defaultValue "cancelled by an operator"
   */
  reason?: string;
}

/**
 * Ends the entry's unfinished run as `cancelled` and returns it as it was, or
 * null when there is none. Throws LOCKED when a process is running the entry.
 */
export async function cancelRun(options: CancelRunOptions): Promise<RunRecord | null> {
  const { pool, entry } = options;
  const client = await pool.connect();
  try {
    if (!(await tryLockEntry(client, entry))) {
      const holder = await lockHolder(pool, entry);
      throw new PurgerError("LOCKED", `entry "${entry}" is running in another process${holder ? `: ${holder}` : ""}`, {
        hint: "stop that run first (q or Ctrl-C in its UI, SIGTERM to its process), then cancel the run it leaves",
      });
    }
    try {
      const run = await findResumableRun(client, entry);
      if (!run) return null;
      const now = await databaseNow(client);
      await client.query("BEGIN");
      await finishRun(client, run.id, {
        status: "cancelled",
        processed: run.processed,
        batches: run.batches,
        tables: run.tables,
        error: options.reason ?? "cancelled by an operator",
        guard: null,
        durationMs: Math.max(0, now.getTime() - run.startedAt.getTime()),
      });
      if (options.workerSchema) {
        await client.query(`SELECT 1 FROM ${quoteIdent(options.workerSchema)}.remove_job($1)`, [entryJobKey(entry, "continue")]);
      }
      await client.query("COMMIT");
      return run;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      await unlockEntry(client, entry).catch(() => {});
    }
  } finally {
    client.release();
  }
}
