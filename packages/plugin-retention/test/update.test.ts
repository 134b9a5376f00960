import { describe, expect, it } from "vitest";
import { ago, column, DAY, HOUR, ids, NOW, run, useDatabase } from "./fixtures.js";

const db = useDatabase("retention_update");

describe("action: update", () => {
  it("clears a column of inactive rows; a second run is a no-op", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE user_sessions (id int PRIMARY KEY, last_active_at timestamptz, last_active_ip inet)`);
    await pool.query(
      `INSERT INTO user_sessions VALUES (1, $1, '10.0.0.1'), (2, $1, NULL), (3, $2, '10.0.0.3'), (4, $1, '10.0.0.4'), (5, NULL, '10.0.0.5')`,
      [ago(40 * DAY), ago(HOUR)],
    );
    const options = { table: "user_sessions", column: "last_active_at", action: "update", set: { last_active_ip: null } };
    const first = await run(pool, options, { retention: "30d", batchSize: 1 });
    expect(first).toMatchObject({ status: "succeeded", processed: 2 });
    expect(await column(pool, `SELECT id || '=' || coalesce(host(last_active_ip), '-') FROM user_sessions ORDER BY id`)).toEqual([
      "1=-",
      "2=-",
      "3=10.0.0.3",
      "4=-",
      "5=10.0.0.5",
    ]);
    expect(await run(pool, options, { retention: "30d" })).toMatchObject({ status: "succeeded", processed: 0 });
  });

  it("{ now: true } writes the run's start time, the same in every batch; rows already set do not qualify", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE compat_sessions (id int PRIMARY KEY, last_active_at timestamptz, finished_at timestamptz)`);
    await pool.query(
      `INSERT INTO compat_sessions SELECT g, $1::timestamptz - g * interval '1 day', CASE WHEN g = 50 THEN $2::timestamptz END FROM generate_series(1, 60) g`,
      [NOW.toISOString(), ago(100 * DAY)],
    );
    const options = { table: "compat_sessions", column: "last_active_at", action: "update", set: { finished_at: { now: true } } };
    const first = await run(pool, options, { retention: "30d", batchSize: 4 });
    expect(first).toMatchObject({ status: "succeeded", processed: 29 });
    expect(
      await column(pool, `SELECT DISTINCT finished_at = $1 FROM compat_sessions WHERE id > 30 AND id <> 50`, [NOW.toISOString()]),
    ).toEqual([true]);
    expect(await column(pool, `SELECT id FROM compat_sessions WHERE finished_at IS NULL ORDER BY id`)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    expect(await column(pool, `SELECT finished_at = $1 FROM compat_sessions WHERE id = 50`, [ago(100 * DAY)])).toEqual([true]);
    const later = new Date(NOW.getTime() + DAY);
    expect(await run(pool, options, { retention: "30d", now: later })).toMatchObject({ processed: 1 }); // id 30 aged past the window
  });

  it("resets stuck work (enum status back to a retry state, timestamp bumped) and leaves the rest", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TYPE pkg_state AS ENUM ('pending', 'processing', 'done')`);
    await pool.query(
      `CREATE TABLE packages (id int PRIMARY KEY, state pkg_state NOT NULL, updated_at timestamptz NOT NULL, attempts int NOT NULL DEFAULT 0)`,
    );
    await pool.query(`INSERT INTO packages VALUES (1, 'processing', $1), (2, 'processing', $2), (3, 'done', $1), (4, 'pending', $1)`, [
      ago(2 * HOUR),
      ago(60_000),
    ]);
    const options = {
      table: "packages",
      column: "updated_at",
      where: { state: "processing" },
      action: "update",
      set: { state: "pending", updated_at: { now: true } },
    };
    expect(await run(pool, options, { retention: "15m" })).toMatchObject({ processed: 1 });
    expect(
      await column(pool, `SELECT id || ':' || state || ':' || (updated_at = $1) FROM packages ORDER BY id`, [NOW.toISOString()]),
    ).toEqual(["1:pending:true", "2:processing:false", "3:done:false", "4:pending:false"]);
    expect(await run(pool, options, { retention: "15m" })).toMatchObject({ processed: 0 });
    expect(await ids(pool, "packages")).toEqual([1, 2, 3, 4]);
  });

  it("a dry run of an update counts the same rows and changes nothing", async () => {
    const pool = db.pool();
    const options = { table: "user_sessions", column: "last_active_at", action: "update", set: { last_active_ip: "0.0.0.0" } };
    const dry = await run(pool, options, { retention: "30d", dryRun: true, batchSize: 2 });
    expect(dry).toMatchObject({ processed: 3, sample: ["1", "2", "4"] });
    expect(await column(pool, `SELECT count(*)::int FROM user_sessions WHERE last_active_ip = '0.0.0.0'`)).toEqual([0]);
    expect(await run(pool, options, { retention: "30d", batchSize: 2 })).toMatchObject({ processed: 3 });
  });
});
