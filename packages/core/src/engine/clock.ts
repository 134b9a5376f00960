/**
 * The clock runs are timed by: the database's, never the purger host's, so a
 * host whose clock runs ahead cannot move a cutoff into the retention window
 * (test: packages/core/test/resume.test.ts, "a host clock ahead of the database").
 */
import type pg from "pg";

export async function databaseNow(db: pg.ClientBase | pg.Pool): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>("SELECT clock_timestamp() AS now");
  return rows[0]!.now;
}
