import { describe, expect, it } from "vitest";
import { ago, column, DAY, ids, NOW, range, run, useDatabase } from "./fixtures.js";

const db = useDatabase("retention_delete");

describe("delete", () => {
  it("deletes exactly the rows whose column is older than the cutoff; NULL and the cutoff itself stay", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE tokens (id bigserial PRIMARY KEY, revoked_at timestamptz); CREATE INDEX ON tokens (revoked_at)`);
    await pool.query(`INSERT INTO tokens (id, revoked_at) VALUES (1, $1), (2, $2), (3, $3), (4, NULL), (5, $4), (6, $5), (7, $1)`, [
      ago(2 * DAY),
      ago(DAY + 3_600_000),
      ago(DAY - 3_600_000),
      ago(DAY + 1),
      ago(DAY),
    ]);
    const result = await run(pool, { table: "tokens", column: "revoked_at" }, { batchSize: 2 });
    expect(result).toMatchObject({ status: "succeeded", processed: 4, batches: 3 });
    expect(await ids(pool, "tokens")).toEqual([3, 4, 6]);
    const [total] = await column(pool, `SELECT total FROM purger.runs WHERE id = $1`, [result.runId]);
    expect(Number(total)).toBe(4);
  });

  it("an empty table is one empty batch", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE empty_t (id int PRIMARY KEY, ts timestamptz)`);
    const result = await run(pool, { table: "empty_t", column: "ts" });
    expect(result).toMatchObject({ status: "succeeded", processed: 0, batches: 1 });
  });

  it("timestamp ties across batch boundaries are neither lost nor counted twice (microseconds kept)", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE ties (id int PRIMARY KEY, ts timestamptz NOT NULL); CREATE INDEX ON ties (ts)`);
    // 10 rows at one instant, 7 rows one microsecond later, 5 rows on the fresh side.
    await pool.query(
      `INSERT INTO ties SELECT g, CASE WHEN g <= 10 THEN '2026-02-01 10:00:00.123456+00'::timestamptz
                                      WHEN g <= 17 THEN '2026-02-01 10:00:00.123457+00'::timestamptz
                                      ELSE $1::timestamptz END
         FROM generate_series(1, 22) g ORDER BY random()`,
      [ago(3_600_000)],
    );
    const dry = await run(pool, { table: "ties", column: "ts" }, { batchSize: 3, dryRun: true });
    expect(dry).toMatchObject({ status: "succeeded", processed: 17, batches: 6 });
    expect(dry.sample).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    expect(await ids(pool, "ties")).toEqual(range(1, 22));
    const real = await run(pool, { table: "ties", column: "ts" }, { batchSize: 3 });
    expect(real).toMatchObject({ status: "succeeded", processed: 17, batches: 6 });
    expect(await ids(pool, "ties")).toEqual(range(18, 22));
  });

  it("rows locked by another transaction are skipped (SKIP LOCKED) and left to the next run", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE locked (id int PRIMARY KEY, ts timestamptz NOT NULL)`);
    await pool.query(`INSERT INTO locked SELECT g, $1::timestamptz FROM generate_series(1, 10) g`, [ago(2 * DAY)]);
    const other = await pool.connect();
    try {
      await other.query(`BEGIN`);
      await other.query(`SELECT 1 FROM locked WHERE id IN (2, 9) FOR UPDATE`);
      const result = await run(pool, { table: "locked", column: "ts" }, { batchSize: 3 });
      expect(result).toMatchObject({ status: "succeeded", processed: 8 });
      expect(await ids(pool, "locked")).toEqual([2, 9]);
    } finally {
      await other.query(`ROLLBACK`);
      other.release();
    }
    expect(await run(pool, { table: "locked", column: "ts" }, { batchSize: 3 })).toMatchObject({ processed: 2 });
    expect(await ids(pool, "locked")).toEqual([]);
  });

  it("retention: 0s makes every row older than the run's start qualify", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE zero (id int PRIMARY KEY, ts timestamptz)`);
    await pool.query(`INSERT INTO zero VALUES (1, $1), (2, $2), (3, $3), (4, NULL)`, [ago(1), NOW.toISOString(), ago(-1)]);
    const result = await run(pool, { table: "zero", column: "ts" }, { retention: "0s" });
    expect(result.processed).toBe(1);
    expect(await ids(pool, "zero")).toEqual([2, 3, 4]);
  });

  it("timestamp without time zone and date columns are clocks too (read in timeZone, UTC by default)", async () => {
    const pool = db.pool();
    // The cutoff is 2026-02-28 12:00 UTC; the values are far enough from it to hold in any time zone.
    await pool.query(`CREATE TABLE naive (id int PRIMARY KEY, ts timestamp, d date)`);
    await pool.query(
      `INSERT INTO naive VALUES (1, '2026-02-27 20:00', '2026-02-26'), (2, '2026-02-27 12:00', '2026-02-27'), (3, '2026-03-01 03:00', '2026-03-02')`,
    );
    expect((await run(pool, { table: "naive", column: "d" }, { dryRun: true })).processed).toBe(2);
    expect((await run(pool, { table: "naive", column: "ts" })).processed).toBe(2);
    expect(await ids(pool, "naive")).toEqual([3]);
  });

  it("a dry run counts and samples what a real run deletes, and changes nothing", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE dry (id int PRIMARY KEY, ts timestamptz)`);
    await pool.query(`INSERT INTO dry SELECT g, $1::timestamptz - g * interval '1 hour' FROM generate_series(1, 100) g`, [
      NOW.toISOString(),
    ]);
    const dry = await run(pool, { table: "dry", column: "ts" }, { batchSize: 7, dryRun: true });
    expect(dry).toMatchObject({ status: "succeeded", dryRun: true, processed: 76 });
    expect(dry.sample).toEqual(["100", "99", "98", "97", "96", "95", "94", "93", "92", "91"]);
    expect((await ids(pool, "dry")).length).toBe(100);
    const real = await run(pool, { table: "dry", column: "ts" }, { batchSize: 7 });
    expect(real.processed).toBe(dry.processed);
    expect(await ids(pool, "dry")).toEqual(range(1, 24));
  });

  it("guards count exactly before the first change and stop the run (R8)", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE guarded (id int PRIMARY KEY, ts timestamptz)`);
    await pool.query(`INSERT INTO guarded SELECT g, $1::timestamptz - g * interval '1 hour' FROM generate_series(1, 40) g`, [
      NOW.toISOString(),
    ]);
    const byRows = await run(pool, { table: "guarded", column: "ts" }, { guard: { maxRows: 10 } });
    expect(byRows).toMatchObject({ status: "guarded", processed: 0 });
    expect(byRows.guard).toContain("counted 11");
    const byFraction = await run(pool, { table: "guarded", column: "ts" }, { guard: { maxFraction: 0.25 } });
    expect(byFraction).toMatchObject({ status: "guarded" });
    expect(byFraction.guard).toContain("of 40 items");
    expect((await ids(pool, "guarded")).length).toBe(40);
    expect(await run(pool, { table: "guarded", column: "ts" }, { guard: { maxRows: 16, maxFraction: 0.5 } })).toMatchObject({
      status: "succeeded",
      processed: 16,
    });
  });
});

describe("where", () => {
  it("scalars, null, lists (with null) and enums in their own type", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TYPE "Job Status" AS ENUM ('queued', 'running', 'completed', 'failed')`);
    await pool.query(
      `CREATE TABLE jobs (id int PRIMARY KEY, finished_at timestamptz, status "Job Status" NOT NULL, queue text, attempts int, urgent boolean)`,
    );
    const old = ago(2 * DAY);
    await pool.query(
      `INSERT INTO jobs VALUES
        (1, $1, 'completed', 'mail', 1, false), (2, $1, 'failed', 'mail', 3, false), (3, $1, 'running', 'mail', 1, false),
        (4, $1, 'queued', NULL, 1, true), (5, $1, 'completed', 'sms', 2, true), (6, $2, 'completed', 'mail', 1, false),
        (7, $1, 'failed', NULL, 5, false)`,
      [old, ago(1000)],
    );
    const dry = (options: Record<string, unknown>) =>
      run(pool, { table: "jobs", column: "finished_at", ...options }, { dryRun: true, batchSize: 2 });
    expect((await dry({ where: { status: ["completed", "failed"] } })).sample).toEqual(["1", "2", "5", "7"]);
    expect((await dry({ where: { status: "completed", queue: "mail" } })).sample).toEqual(["1"]);
    expect((await dry({ where: { queue: null } })).sample).toEqual(["4", "7"]);
    expect((await dry({ where: { queue: ["sms", null] } })).sample).toEqual(["4", "5", "7"]);
    expect((await dry({ where: { attempts: [2, 3], urgent: true } })).sample).toEqual(["5"]);
    expect((await dry({ where: { queue: "'; DROP TABLE jobs; --" } })).processed).toBe(0);
    const real = await run(pool, { table: "jobs", column: "finished_at", where: { status: ["completed", "failed"] } });
    expect(real.processed).toBe(4);
    expect(await ids(pool, "jobs")).toEqual([3, 4, 6]);
  });

  it("a value that is not a label of the enum is a CONFIG error before anything runs", async () => {
    const pool = db.pool();
    await expect(run(pool, { table: "jobs", column: "finished_at", where: { status: ["completed", "done"] } })).rejects.toMatchObject({
      code: "CONFIG",
      message: '"done" is not a value of enum Job Status (entry "test", options.where.status)',
      hint: "its values are: queued, running, completed, failed",
    });
  });
});

describe("epoch clocks", () => {
  it("epoch (seconds, integer and numeric) and epochMs compare numbers, one unit on each side of the cutoff", async () => {
    const pool = db.pool();
    // The cutoff falls half-way through a second: NOW + 500 ms − 1 day.
    const now = new Date(NOW.getTime() + 500);
    const cutoffMs = now.getTime() - DAY;
    const s = Math.floor(cutoffMs / 1000);
    await pool.query(`CREATE TABLE epochs (id int PRIMARY KEY, secs bigint, secs_num numeric, ms bigint)`);
    await pool.query(`INSERT INTO epochs VALUES (1, $1, $4, $7), (2, $2, $5, $8), (3, $3, $6, $9), (4, NULL, NULL, NULL)`, [
      s - 1,
      s,
      s + 1,
      cutoffMs / 1000 - 0.001,
      cutoffMs / 1000,
      cutoffMs / 1000 + 0.001,
      cutoffMs - 1,
      cutoffMs,
      cutoffMs + 1,
    ]);
    const dry = async (column: string, columnFormat: string) =>
      (await run(pool, { table: "epochs", column, columnFormat }, { now, dryRun: true, batchSize: 1 })).sample;
    expect(await dry("secs", "epoch")).toEqual(["1", "2"]);
    expect(await dry("secs_num", "epoch")).toEqual(["1"]);
    expect(await dry("ms", "epochMs")).toEqual(["1"]);
    await run(pool, { table: "epochs", column: "ms", columnFormat: "epochMs" }, { now });
    expect(await ids(pool, "epochs")).toEqual([2, 3, 4]);
  });
});

describe("identifiers", () => {
  it("a table with capitals, spaces and quotes in a schema with capitals and spaces", async () => {
    const pool = db.pool();
    await pool.query(
      `CREATE SCHEMA "My Schema"; CREATE TABLE "My Schema"."Weird ""Name"" x" ("Row ID" int PRIMARY KEY, "Revoked At" timestamptz, "Kind" text)`,
    );
    await pool.query(`INSERT INTO "My Schema"."Weird ""Name"" x" VALUES (1, $1, 'a'), (2, $1, 'b'), (3, $2, 'a'), (4, $1, 'a')`, [
      ago(2 * DAY),
      ago(1000),
    ]);
    const quoted = await run(
      pool,
      { table: '"My Schema"."Weird ""Name"" x"', column: "Revoked At", where: { Kind: "a" } },
      { batchSize: 1, dryRun: true },
    );
    expect(quoted).toMatchObject({ status: "succeeded", processed: 2 });
    const plain = await run(pool, { table: 'My Schema.Weird "Name" x', column: "Revoked At", where: { Kind: "a" } }, { batchSize: 1 });
    expect(plain).toMatchObject({ status: "succeeded", processed: 2 });
    expect(await column(pool, `SELECT "Row ID" FROM "My Schema"."Weird ""Name"" x" ORDER BY 1`)).toEqual([2, 3]);
  });

  it("a dot inside a quoted name, and a name found through the search_path", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE "a.b" (id int PRIMARY KEY, ts timestamptz)`);
    await pool.query(`INSERT INTO "a.b" VALUES (1, $1), (2, $2)`, [ago(2 * DAY), ago(1)]);
    expect(await run(pool, { table: '"a.b"', column: "ts" })).toMatchObject({ status: "succeeded", processed: 1 });
    expect(await ids(pool, `"a.b"`)).toEqual([2]);
  });

  it("hostile names are looked up, never spliced: TARGET errors, and nothing is dropped (R6)", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE x (id int PRIMARY KEY, ts timestamptz); INSERT INTO x VALUES (1, now())`);
    await expect(run(pool, { table: "users; DROP TABLE x", column: "ts" })).rejects.toMatchObject({
      code: "TARGET",
      message: 'table "users; DROP TABLE x" does not exist in the search_path (entry "test", options.table)',
    });
    await expect(run(pool, { table: "x", column: 'ts"; DROP TABLE x; --' })).rejects.toMatchObject({ code: "TARGET" });
    await expect(run(pool, { table: "x", column: "ts", where: { 'id" = 1; DROP TABLE x; --': 1 } })).rejects.toMatchObject({
      code: "TARGET",
    });
    await expect(run(pool, { table: 'x"; DROP TABLE x; --.x', column: "ts" })).rejects.toMatchObject({ code: "TARGET" });
    expect(await ids(pool, "x")).toEqual([1]);
  });
});

describe("targets and options that cannot work", () => {
  it("a missing table, column, cascade column or keepLatest.per column is a TARGET error naming it", async () => {
    const pool = db.pool();
    await pool.query(
      `CREATE TABLE parents (id int PRIMARY KEY, ts timestamptz, "Group" text); CREATE TABLE kids (id int PRIMARY KEY, parent_id int)`,
    );
    const fail = (options: Record<string, unknown>) =>
      run(pool, { table: "parents", column: "ts", ...options }).then(
        () => null,
        (e: Error & { code: string; hint?: string }) => ({ code: e.code, message: e.message, hint: e.hint }),
      );
    expect(await fail({ table: "public.nope" })).toMatchInlineSnapshot(`
      {
        "code": "TARGET",
        "hint": "check the table name and the database purger connects to (\`purger doctor\`)",
        "message": "table "public.nope" does not exist (entry "test", options.table)",
      }
    `);
    expect(await fail({ table: "Parents" })).toMatchInlineSnapshot(`
      {
        "code": "TARGET",
        "hint": "did you mean "public.parents"? Names are matched exactly (case and spaces included)",
        "message": "table "Parents" does not exist in the search_path (entry "test", options.table)",
      }
    `);
    expect(await fail({ column: "revoked_at" })).toMatchInlineSnapshot(`
      {
        "code": "TARGET",
        "hint": "its columns are: id, ts, Group",
        "message": "column "revoked_at" does not exist in table public.parents (entry "test", options.column)",
      }
    `);
    expect(await fail({ cascade: [{ table: "kids", column: "parent" }] })).toMatchObject({
      code: "TARGET",
      message: 'column "parent" does not exist in table public.kids (entry "test", options.cascade[0].column)',
    });
    expect(await fail({ keepLatest: { count: 2, per: "group" } })).toMatchObject({
      code: "TARGET",
      message: 'column "group" does not exist in table public.parents (entry "test", options.keepLatest.per)',
      hint: 'did you mean "Group"?',
    });
    expect(await fail({ unlessReferencedBy: [{ table: "kid", column: "parent_id" }] })).toMatchObject({ code: "TARGET" });
    // The key is checked by core's assertUniqueKey, the same check every plugin makes.
    expect(await fail({ key: "Group" })).toMatchObject({
      code: "TARGET",
      message: 'options.key: column "Group" of public.parents is nullable, so it cannot identify a row',
    });
    await pool.query(`CREATE TABLE dup_keys (id int NOT NULL, ts timestamptz)`);
    expect(await fail({ table: "dup_keys", key: "id" })).toMatchObject({
      code: "TARGET",
      message: "options.key: (id) is not a unique key of public.dup_keys: no unique index covers exactly these columns",
    });
  });

  it("options the schema cannot serve are CONFIG errors", async () => {
    const pool = db.pool();
    const fail = (options: Record<string, unknown>) =>
      run(pool, { table: "parents", column: "ts", ...options }).then(
        () => null,
        (e: Error & { code: string; hint?: string }) => ({ code: e.code, message: e.message, hint: e.hint }),
      );
    expect(await fail({ column: "id", columnFormat: "ulid" })).toMatchInlineSnapshot(`
      {
        "code": "CONFIG",
        "hint": "use columnFormat: epoch (seconds) or epochMs (milliseconds)",
        "message": "columnFormat "ulid" cannot read column public.parents.id of type int4 (entry "test", options.columnFormat)",
      }
    `);
    expect(await fail({ column: "Group" })).toMatchObject({
      code: "CONFIG",
      hint: "use columnFormat: ulid or uuidv7 (time in the first 48 bits)",
    });
    expect(await fail({ action: "update" })).toMatchObject({ code: "CONFIG" });
    expect(await fail({ set: { ts: null } })).toMatchObject({ code: "CONFIG" });
    expect(await fail({ action: "update", set: { id: 3 } })).toMatchObject({
      code: "CONFIG",
      message: expect.stringContaining('cannot change the key column "id"'),
    });
    expect(await fail({ action: "update", set: { Group: { now: true } } })).toMatchObject({ code: "CONFIG" });
    expect(await fail({ colum: "ts" })).toMatchObject({ code: "CONFIG" });
    expect(await fail({ table: "a..b" })).toMatchObject({ code: "CONFIG" });
    await pool.query(`CREATE TABLE nokey (ts timestamptz)`);
    expect(await fail({ table: "nokey" })).toMatchObject({
      code: "CONFIG",
      message: expect.stringContaining("has no primary key: set `key`"),
    });
  });
});
