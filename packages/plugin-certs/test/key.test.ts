/**
 * An explicit `key` must identify one row: NOT NULL and covered by a valid,
 * non-partial unique index (or the primary key), for certificates and credentials alike.
 */
import { createTestDatabase, runPlugin } from "@purger/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import certs from "../src/index.js";
import { addCertificates, createFleet, fleetOptions, statuses } from "./fleet.js";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase("plugin-certs-key");
});
afterAll(async () => {
  await db?.drop();
});

describe("an explicit key", () => {
  it.each([
    ["not unique", "ALTER TABLE %t ADD COLUMN k bigint NOT NULL DEFAULT 1", "no unique index covers exactly these columns"],
    ["nullable", "ALTER TABLE %t ADD COLUMN k bigint UNIQUE", 'column "k" of %d is nullable, so it cannot identify a row'],
    [
      "partially unique",
      "ALTER TABLE %t ADD COLUMN k bigint NOT NULL DEFAULT 1; CREATE UNIQUE INDEX k_live ON %t (k) WHERE status = 'active'",
      "its unique index k_live is partial (WHERE …)",
    ],
  ])("is refused with TARGET when it is %s (certificates.key and credentials.key), before anything changes", async (_, ddl, why) => {
    for (const option of ["certificates", "credentials"] as const) {
      const fleet = await createFleet(db.pool);
      await addCertificates(db.pool, fleet, [[1, "01", -1]]);
      const table = fleet.t(option);
      await db.pool.query(ddl.replaceAll("%t", table));
      const options = fleetOptions(fleet);
      (options[option] as Record<string, unknown>).key = "k";
      const error = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: "TARGET" });
      const message = (error as Error).message;
      expect(message.startsWith(`options.${option}.key: `)).toBe(true);
      expect(message).toContain(why.replaceAll("%d", table));
      expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "active" });
    }
  });

  it("is accepted when unique and NOT NULL", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [[1, "01", -1]]);
    await db.pool.query(`ALTER TABLE ${fleet.t("certificates")} ADD COLUMN k bigint NOT NULL DEFAULT 7 UNIQUE`);
    const options = fleetOptions(fleet);
    (options.certificates as Record<string, unknown>).key = "k";
    const result = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options });
    expect(result).toMatchObject({ status: "succeeded", processed: 1 });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "expired" });
  });
});
