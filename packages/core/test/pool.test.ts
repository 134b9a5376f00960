/**
 * createPool: every connection purger opens reads and writes times in UTC,
 * whatever zone the database or role defaults to.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../src/host.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase("pool");
  const { rows } = await db.pool.query<{ name: string }>("SELECT current_database() AS name");
  await db.pool.query(`ALTER DATABASE "${rows[0]!.name}" SET timezone = 'Asia/Tokyo'`);
});

afterAll(async () => {
  await db?.drop();
});

async function settings(url: string): Promise<{ zone: string; timeout: string; midnight: string }> {
  const pool = createPool({ url, max: 1 });
  try {
    const { rows } = await pool.query<{ zone: string; timeout: string; midnight: string }>(
      "SELECT current_setting('TimeZone') AS zone, current_setting('statement_timeout') AS timeout, '2026-03-01 00:00'::timestamp::timestamptz::text AS midnight",
    );
    return rows[0]!;
  } finally {
    await pool.end();
  }
}

describe("createPool", () => {
  it("sets the session TimeZone to UTC on a database whose default zone is Asia/Tokyo", async () => {
    // A fresh session of the test's own pool sees the database default: the setting is real.
    const plain = new pg.Client({ connectionString: db.url });
    await plain.connect();
    try {
      expect((await plain.query("SELECT current_setting('TimeZone') AS zone")).rows[0].zone).toBe("Asia/Tokyo");
    } finally {
      await plain.end();
    }
    expect(await settings(db.url)).toEqual({ zone: "UTC", timeout: "0", midnight: "2026-03-01 00:00:00+00" });
  });

  it("keeps the startup options of the URL and still sets UTC", async () => {
    const url = new URL(db.url);
    url.searchParams.set("options", "-c statement_timeout=4321 -c TimeZone=America/Los_Angeles");
    expect(await settings(url.toString())).toEqual({ zone: "UTC", timeout: "4321ms", midnight: "2026-03-01 00:00:00+00" });
  });
});
