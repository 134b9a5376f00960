/**
 * Before its first change a run reads the clock's oldest and newest values and
 * refuses a `columnFormat` they do not fit: random UUIDs read as UUIDv7, seconds
 * read as milliseconds and the like would delete rows that are not old.
 */
import { describe, expect, it } from "vitest";
import { checkEntry } from "@purger/core/host";
import { testEntry } from "@purger/core/testing";
import retention from "../src/index.js";
import { column, NOW, run, useDatabase } from "./fixtures.js";

const db = useDatabase("retention_clock_format");

async function refusal(options: Record<string, unknown>) {
  return run(db.pool(), options, { retention: "30d" }).then(
    (result) => ({ ran: result.status }),
    (e: Error & { code: string; hint?: string }) => ({ code: e.code, message: e.message, hint: e.hint }),
  );
}

async function count(table: string): Promise<number> {
  return Number((await column(db.pool(), `SELECT count(*) FROM ${table}`))[0]);
}

describe("columnFormat is checked against the clock's values", () => {
  it("20 000 random (version 4) UUIDs with columnFormat uuidv7: a clear CONFIG error, nothing deleted", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE sessions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), note text)`);
    await pool.query(`INSERT INTO sessions (note) SELECT 'fresh' FROM generate_series(1, 20000)`);
    const refused = await refusal({ table: "sessions", column: "id", columnFormat: "uuidv7" });
    expect(refused).toMatchObject({
      code: "CONFIG",
      message: expect.stringMatching(
        /^options\.columnFormat is "uuidv7", but 40 of the 40 values of public\.sessions\.id read \(its oldest and newest\) are not UUIDv7s: "[0-9a-f-]{36}" is a version 4 UUID \(entry "test", options\.columnFormat\)$/,
      ),
      hint: "uuidv7 reads the time from the first 48 bits of a version 7 UUID; random UUIDs hold no time: use a timestamp column as the clock",
    });
    expect(await count("sessions")).toBe(20000);
    const dry = await run(pool, { table: "sessions", column: "id", columnFormat: "uuidv7" }, { retention: "30d", dryRun: true }).catch(
      (e: Error & { code: string }) => e.code,
    );
    expect(dry).toBe("CONFIG");
  });

  it("the same random UUIDs read as ULIDs: their times are not plausible", async () => {
    const refused = await refusal({ table: "sessions", column: "id", columnFormat: "ulid" });
    expect(refused).toMatchObject({
      code: "CONFIG",
      message: expect.stringMatching(/^options\.columnFormat is "ulid", but \d+ of the 40 values of public\.sessions\.id read/),
    });
    expect(await count("sessions")).toBe(20000);
  });

  it("epoch seconds in a column declared epochMs, and milliseconds declared epoch", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE events (id int PRIMARY KEY, at bigint NOT NULL)`);
    // One row a minute for the last 40 days, in seconds.
    await pool.query(`INSERT INTO events SELECT g, $1::bigint - g * 60 FROM generate_series(1, 57600) g`, [NOW.getTime() / 1000]);
    expect(await refusal({ table: "events", column: "at", columnFormat: "epochMs" })).toEqual({
      code: "CONFIG",
      message:
        'options.columnFormat is "epochMs", but 40 of the 40 values of public.events.at read (its oldest and newest) are not plausible times: 1768910400 read as milliseconds is 1970-01-21T11:21:50.400Z, before 2000 (entry "test", options.columnFormat)',
      hint: "the values look like seconds since 1970: use columnFormat: epoch",
    });
    expect(await count("events")).toBe(57600);

    await pool.query(`CREATE TABLE events_ms (id int PRIMARY KEY, at bigint NOT NULL)`);
    await pool.query(`INSERT INTO events_ms SELECT g, $1::bigint - g * 60000 FROM generate_series(1, 100) g`, [NOW.getTime()]);
    expect(await refusal({ table: "events_ms", column: "at", columnFormat: "epoch" })).toEqual({
      code: "CONFIG",
      message:
        'options.columnFormat is "epoch", but 40 of the 40 values of public.events_ms.at read (its oldest and newest) are not plausible times: 1772360400000 read as seconds is after the year 3000 (entry "test", options.columnFormat)',
      hint: "the values look like milliseconds since 1970: use columnFormat: epochMs",
    });
    expect((await run(pool, { table: "events_ms", column: "at", columnFormat: "epochMs" }, { retention: "1h" })).processed).toBe(40);
  });

  it("a ULID text column with a value that is not a canonical ULID", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE tokens (id text PRIMARY KEY)`);
    await pool.query(
      `INSERT INTO tokens VALUES ('01JN0000000000000000000000'), ('01jn0000000000000000000001'), ('01JN0000000000000000000002')`,
    );
    expect(await refusal({ table: "tokens", column: "id", columnFormat: "ulid" })).toEqual({
      code: "CONFIG",
      message:
        'options.columnFormat is "ulid", but 1 of the 3 values of public.tokens.id read (its oldest and newest) are not ULIDs: "01jn0000000000000000000001" is not a canonical ULID (26 upper-case Crockford base32 characters) (entry "test", options.columnFormat)',
      hint: "ULIDs compare as text only in their canonical upper case: store them upper-case (UPDATE … SET id = upper(id))",
    });
    expect(await count("tokens")).toBe(3);
  });

  it("doctor reports the refusal, and the sampled range when the values fit", async () => {
    const pool = db.pool();
    const refused = await checkEntry({
      pool,
      entry: testEntry(retention, { pool, options: { table: "events", column: "at", columnFormat: "epochMs" }, retention: "30d" }),
      configDir: process.cwd(),
    });
    expect(refused).toEqual([
      {
        level: "error",
        message: expect.stringContaining('options.columnFormat is "epochMs", but 40 of the 40 values of public.events.at read'),
        hint: "the values look like seconds since 1970: use columnFormat: epoch",
      },
    ]);
    const fits = await checkEntry({
      pool,
      entry: testEntry(retention, { pool, options: { table: "events", column: "at", columnFormat: "epoch" }, retention: "30d" }),
      configDir: process.cwd(),
    });
    expect(fits).toContainEqual({
      level: "ok",
      message:
        "columnFormat epoch fits the 40 values of public.events.at read (its oldest and newest): from 2026-01-20T12:00:00.000Z to 2026-03-01T11:59:00.000Z",
    });
  });
});
