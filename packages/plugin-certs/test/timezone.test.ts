/**
 * `notAfter` and `expiresAt` as `timestamp without time zone` are wall-clock
 * times in the entry's `timeZone` (default UTC), whatever the session's
 * TimeZone: here the database's default is set to zones either side of UTC.
 */
import { createTestDatabase, runPlugin } from "@purger/core/testing";
import { checkPlugin } from "@purger/core/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import certs from "../src/index.js";
import { createFleet, fleetOptions, statuses, type Fleet } from "./fleet.js";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase("plugin-certs-timezone");
});
afterAll(async () => {
  await db?.drop();
});

/** A pool whose sessions start in `zone` (the database's default, as a DBA would set it). */
async function poolIn(zone: string): Promise<pg.Pool> {
  const { rows } = await db.pool.query<{ name: string }>("SELECT current_database() AS name");
  await db.pool.query(`ALTER DATABASE "${rows[0]!.name}" SET timezone = '${zone}'`);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const shown = await pool.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz");
  expect(shown.rows[0]!.tz).toBe(zone);
  return pool;
}

/** Certificates 1 (expires in 1 h) and 2 (expired 1 h ago), credentials 101 and 102 likewise, as wall-clock times in `wall`. */
async function seed(pool: pg.Pool, wall: string): Promise<Fleet> {
  const fleet = await createFleet(pool);
  await pool.query(`ALTER TABLE ${fleet.t("certificates")} ALTER not_after TYPE timestamp(3) without time zone`);
  await pool.query(
    `INSERT INTO ${fleet.t("certificates")} (id, serial, not_after) VALUES
       (1, '01', (now() AT TIME ZONE $1) + interval '1 hour'), (2, '02', (now() AT TIME ZONE $1) - interval '1 hour')`,
    [wall],
  );
  await pool.query(
    `INSERT INTO ${fleet.t("credentials")} (id, expires_at) VALUES
       (101, (now() AT TIME ZONE $1) + interval '1 hour'), (102, (now() AT TIME ZONE $1) - interval '1 hour')`,
    [wall],
  );
  return fleet;
}

describe.each(["Asia/Tokyo", "America/Los_Angeles"])("sessions in %s", (zone) => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = await poolIn(zone);
  });
  afterAll(async () => {
    await pool?.end();
  });

  it("reads timestamp columns as UTC by default: expires in 1 h → untouched, expired 1 h ago → expired", async () => {
    const fleet = await seed(pool, "UTC");
    const result = await runPlugin(certs, { pool, id: fleet.schema, options: fleetOptions(fleet) });
    expect(result).toMatchObject({ status: "succeeded", tables: { certificates_expired: 1, credentials_expired: 1 } });
    expect(await statuses(pool, fleet, "certificates")).toEqual({ 1: "active", 2: "expired" });
    expect(await statuses(pool, fleet, "credentials")).toEqual({ 101: "active", 102: "expired" });
  });

  it("reads them in the timeZone option when set (wall-clock times of another zone)", async () => {
    const other = zone === "Asia/Tokyo" ? "America/Los_Angeles" : "Asia/Tokyo";
    const fleet = await seed(pool, other);
    const options = { ...fleetOptions(fleet), timeZone: other };
    const dry = await runPlugin(certs, { pool, id: fleet.schema, options, dryRun: true });
    expect(dry).toMatchObject({ processed: 2, tables: { certificates_expired: 1, credentials_expired: 1 } });
    const result = await runPlugin(certs, { pool, id: fleet.schema, options });
    expect(result).toMatchObject({ status: "succeeded", processed: 2 });
    expect(await statuses(pool, fleet, "certificates")).toEqual({ 1: "active", 2: "expired" });
    expect(await statuses(pool, fleet, "credentials")).toEqual({ 101: "active", 102: "expired" });
  });
});

describe("the timeZone option", () => {
  it("is refused with CONFIG when PostgreSQL does not know the zone", async () => {
    const fleet = await createFleet(db.pool);
    await expect(
      runPlugin(certs, { pool: db.pool, id: fleet.schema, options: { ...fleetOptions(fleet), timeZone: "Mars/Olympus_Mons" } }),
    ).rejects.toMatchObject({ code: "CONFIG", message: 'options.timeZone: PostgreSQL does not know the time zone "Mars/Olympus_Mons"' });
  });

  it("is named by purger doctor for each timestamp column without time zone", async () => {
    const fleet = await createFleet(db.pool);
    const found = await checkPlugin(certs, { pool: db.pool, options: { ...fleetOptions(fleet), timeZone: "Europe/Paris" } });
    expect(found.filter((d) => d.message.includes("time zone")).map((d) => `${d.level}: ${d.message}`)).toEqual([
      `ok: credentials ${fleet.t("credentials")}: expires_at is a timestamp without time zone, read as wall-clock time in Europe/Paris (option timeZone)`,
    ]);
  });
});
