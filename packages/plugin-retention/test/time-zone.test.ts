/**
 * `timestamp` (without time zone) and `date` clocks: their values are read in
 * the zone of the `timeZone` option, never in the session's TimeZone (which a
 * database default can set east or west of UTC).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { checkEntry, silentLogger } from "@purger/core/host";
import { createTestDatabase, testEntry, type TestDatabase } from "@purger/core/testing";
import retention, { type RetentionOptions } from "../src/index.js";
import { bind } from "../src/sql.js";
import { column, ids, NOW, run } from "./fixtures.js";

let db: TestDatabase;
let database: string;

beforeAll(async () => {
  db = await createTestDatabase("retention_time_zone");
  database = (await db.pool.query<{ name: string }>("SELECT current_database() AS name")).rows[0]!.name;
});

afterAll(async () => {
  await db?.drop();
});

/** A pool whose sessions start in `zone`, the database default (as `ALTER DATABASE … SET timezone` leaves it). */
async function withDatabaseZone<T>(zone: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  await db.pool.query(`ALTER DATABASE "${database}" SET timezone = '${zone}'`);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  try {
    const [seen] = await column(pool, "SELECT current_setting('TimeZone')");
    expect(seen).toBe(zone);
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

// NOW is 2026-03-01 12:00 UTC and retention 1d: the cutoff is 2026-02-28 12:00:00 UTC.
describe("timestamp and date clocks in a database whose default zone is not UTC", () => {
  for (const zone of ["Asia/Tokyo", "America/Los_Angeles"]) {
    it(`values written in UTC (the default timeZone), session zone ${zone}: exactly the rows past the window go`, async () => {
      const table = `utc_${zone.replace(/\W/g, "_").toLowerCase()}`;
      await withDatabaseZone(zone, async (pool) => {
        await pool.query(`CREATE TABLE ${table} (id int PRIMARY KEY, at timestamp NOT NULL)`);
        await pool.query(`INSERT INTO ${table} VALUES
          (1, '2026-02-27 12:00:00'), (2, '2026-02-28 11:59:59.999999'),
          (3, '2026-02-28 12:00:00'), (4, '2026-02-28 12:00:00.000001'), (5, '2026-03-01 11:00:00')`);
        expect(await run(pool, { table, column: "at" })).toMatchObject({ status: "succeeded", processed: 2 });
        expect(await ids(pool, table)).toEqual([3, 4, 5]);
      });
    });
  }

  it("values written in Asia/Tokyo (timeZone: Asia/Tokyo), session in America/Los_Angeles", async () => {
    await withDatabaseZone("America/Los_Angeles", async (pool) => {
      // The cutoff in Tokyo's wall clock: 2026-02-28 21:00:00.
      await pool.query(`CREATE TABLE tokyo (id int PRIMARY KEY, at timestamp NOT NULL)`);
      await pool.query(`INSERT INTO tokyo VALUES
        (1, '2026-02-28 12:00:00'), (2, '2026-02-28 20:59:59.999999'), (3, '2026-02-28 21:00:00'), (4, '2026-02-28 21:00:00.000001')`);
      const options = { table: "tokyo", column: "at", timeZone: "Asia/Tokyo" };
      expect(await run(pool, options, { dryRun: true })).toMatchObject({ processed: 2, sample: ["1", "2"] });
      expect(await run(pool, options)).toMatchObject({ status: "succeeded", processed: 2 });
      expect(await ids(pool, "tokyo")).toEqual([3, 4]);
    });
  });

  it("a date column is a day starting at midnight in timeZone (America/Los_Angeles), session in Asia/Tokyo", async () => {
    await withDatabaseZone("Asia/Tokyo", async (pool) => {
      // Cutoff 2026-02-28 06:00 UTC = 2026-02-27 22:00 in Los Angeles (but 2026-02-28 15:00 in Tokyo).
      await pool.query(`CREATE TABLE days (id int PRIMARY KEY, d date NOT NULL)`);
      await pool.query(`INSERT INTO days VALUES (1, '2026-02-26'), (2, '2026-02-27'), (3, '2026-02-28'), (4, '2026-03-01')`);
      const result = await run(pool, { table: "days", column: "d", timeZone: "America/Los_Angeles" }, { retention: "30h" });
      expect(result).toMatchObject({ status: "succeeded", processed: 2 });
      expect(await ids(pool, "days")).toEqual([3, 4]);
    });
  });

  it("`set: { now: true }` on a timestamp column writes the run's start in timeZone", async () => {
    await withDatabaseZone("America/Los_Angeles", async (pool) => {
      await pool.query(`CREATE TABLE archived (id int PRIMARY KEY, at timestamp NOT NULL, archived_at timestamp, archived_on date)`);
      await pool.query(`INSERT INTO archived VALUES (1, '2026-02-01 00:00:00', NULL, NULL)`);
      const options = {
        table: "archived",
        column: "at",
        timeZone: "Asia/Tokyo",
        action: "update",
        set: { archived_at: { now: true }, archived_on: { now: true } },
      };
      expect(await run(pool, options)).toMatchObject({ status: "succeeded", processed: 1 });
      // NOW is 2026-03-01 12:00 UTC: 21:00 in Tokyo, the same day there.
      expect(await column(pool, "SELECT archived_at::text || ' ' || archived_on::text FROM archived")).toEqual([
        "2026-03-01 21:00:00 2026-03-01",
      ]);
    });
  });

  it("the cutoff is a constant: the index on the timestamp column serves the scan", async () => {
    await withDatabaseZone("Asia/Tokyo", async (pool) => {
      await pool.query(`CREATE TABLE indexed (id int PRIMARY KEY, at timestamp NOT NULL); CREATE INDEX indexed_at ON indexed (at)`);
      await pool.query(`INSERT INTO indexed SELECT g, '2026-01-01'::timestamp + g * interval '1 minute' FROM generate_series(1, 2000) g`);
      await pool.query(`ANALYZE indexed`);
      const options = { table: "indexed", column: "at", timeZone: "Europe/Paris" };
      const entry = testEntry(retention, { pool, options, retention: "1d" });
      const state = await retention.prepare!({
        entry: { id: "test", retentionMs: 86_400_000, configDir: process.cwd() },
        options: entry.options as RetentionOptions,
        pool,
        log: silentLogger,
        signal: new AbortController().signal,
      });
      const client = await pool.connect();
      try {
        // With sequential scans priced out, a plan still scanning the table means the index cannot serve.
        await client.query("SET enable_seqscan = off");
        const values = { cutoff: new Date(NOW.getTime() - 86_400_000).toISOString(), startedAt: NOW.toISOString() };
        const explained = await client.query(bind(state.explainCount, values));
        const plan = JSON.stringify(explained.rows[0]["QUERY PLAN"]);
        expect(plan).toContain('"Index Name":"indexed_at"');
        expect(plan).toMatch(/"Index Cond":"\(at < /);
      } finally {
        client.release();
      }
    });
  });
});

describe("the timeZone option", () => {
  it("an unknown zone is a CONFIG error naming options.timeZone, with the zone differing only in case", async () => {
    const pool = db.pool;
    await pool.query(`CREATE TABLE zoned (id int PRIMARY KEY, at timestamp)`);
    await expect(run(pool, { table: "zoned", column: "at", timeZone: "asia/tokyo" })).rejects.toMatchObject({
      code: "CONFIG",
      message: 'time zone "asia/tokyo" is not an IANA zone name PostgreSQL knows (entry "test", options.timeZone)',
      hint: 'did you mean "Asia/Tokyo"?',
    });
    await expect(run(pool, { table: "zoned", column: "at", timeZone: "JST" })).rejects.toMatchObject({
      code: "CONFIG",
      message: 'time zone "JST" is not an IANA zone name PostgreSQL knows (entry "test", options.timeZone)',
      hint: "name the zone the column's values are written in, as in pg_timezone_names: Europe/Berlin, America/New_York, UTC",
    });
  });

  it("doctor says which zone it reads a timestamp or date column in", async () => {
    const pool = db.pool;
    const diagnostics = await checkEntry({
      pool,
      entry: testEntry(retention, { pool, options: { table: "zoned", column: "at", timeZone: "Europe/Paris" }, retention: "1d" }),
      configDir: process.cwd(),
    });
    expect(diagnostics).toContainEqual({
      level: "ok",
      message:
        "the clock public.zoned.at is a timestamp without time zone: its values are read as wall-clock times in Europe/Paris (options.timeZone)",
    });
    await pool.query(`CREATE TABLE instants (id int PRIMARY KEY, at timestamptz)`);
    const ignored = await checkEntry({
      pool,
      entry: testEntry(retention, { pool, options: { table: "instants", column: "at", timeZone: "Europe/Paris" }, retention: "1d" }),
      configDir: process.cwd(),
    });
    expect(ignored).toContainEqual({
      level: "warn",
      message: "options.timeZone (Europe/Paris) has no effect: the clock public.instants.at is a timestamptz, which holds instants",
      hint: "remove timeZone from this entry",
    });
  });
});
