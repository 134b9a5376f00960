import { describe, expect, it } from "vitest";
import { ago, DAY, HOUR, ids, run, useDatabase } from "./fixtures.js";

const db = useDatabase("retention_keep_latest");

describe("keepLatest", () => {
  it("never deletes the newest `count` rows overall; ties on the column are broken by key (higher key is newer)", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE policy_data (id int PRIMARY KEY, created_at timestamptz)`);
    await pool.query(`INSERT INTO policy_data VALUES (1, $1), (2, $2), (3, $3), (4, $3), (5, $3), (6, $4), (7, NULL)`, [
      ago(10 * DAY),
      ago(9 * DAY),
      ago(5 * DAY),
      ago(4 * DAY),
    ]);
    const options = { table: "policy_data", column: "created_at", keepLatest: { count: 3 } };
    expect(await run(pool, options, { batchSize: 1, dryRun: true })).toMatchObject({ processed: 3, sample: ["1", "2", "3"] });
    expect(await run(pool, options, { batchSize: 1 })).toMatchObject({ status: "succeeded", processed: 3 });
    expect(await ids(pool, "policy_data")).toEqual([4, 5, 6, 7]);
    expect(await run(pool, options, { batchSize: 1 })).toMatchObject({ processed: 0 });
  });

  it("per group (NULL is a group of its own); a group with fewer rows than `count` loses nothing", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE events (id int PRIMARY KEY, at timestamptz, grp text)`);
    await pool.query(
      `INSERT INTO events VALUES (1, $1, 'a'), (2, $2, 'a'), (3, $3, 'a'), (4, $3, 'a'), (5, $4, 'b'),
                                 (6, $1, NULL), (7, $2, NULL), (8, $3, NULL), (9, $1, 'c'), (10, $5, 'c'), (11, $5, 'c')`,
      [ago(10 * DAY), ago(9 * DAY), ago(8 * DAY), ago(3 * DAY), ago(HOUR)],
    );
    const options = { table: "events", column: "at", keepLatest: { count: 2, per: "grp" } };
    expect(await run(pool, options, { batchSize: 2 })).toMatchObject({ status: "succeeded", processed: 4 });
    expect(await ids(pool, "events")).toEqual([3, 4, 5, 7, 8, 10, 11]);
  });

  it("ranks among the rows matching `where` (so it protects at least the newest matching rows)", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE jobs (id int PRIMARY KEY, at timestamptz, kind text, queue text NOT NULL)`);
    await pool.query(
      `INSERT INTO jobs VALUES (1, $1, 'x', 'q1'), (2, $2, 'y', 'q1'), (3, $3, 'x', 'q1'), (4, $4, 'y', 'q1'), (5, $1, 'x', 'q2'), (6, $2, 'x', 'q2')`,
      [ago(10 * DAY), ago(9 * DAY), ago(8 * DAY), ago(7 * DAY)],
    );
    const options = { table: "jobs", column: "at", where: { kind: "x" }, keepLatest: { count: 1, per: ["queue"] } };
    expect(await run(pool, options)).toMatchObject({ processed: 2 });
    expect(await ids(pool, "jobs")).toEqual([2, 3, 4, 6]);
  });
});
