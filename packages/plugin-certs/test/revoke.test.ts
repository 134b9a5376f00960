import { createTestDatabase, runBin, runPlugin } from "@purger/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import certs, { idempotencyKey } from "../src/index.js";
import { addCertificates, addCredentials, createFleet, fleetOptions, revocations, statuses } from "./fleet.js";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase("plugin-certs-revoke");
});
afterAll(async () => {
  await db?.drop();
});

const configDir = import.meta.dirname;

describe("bin: revoke", () => {
  it("revokes a certificate whose serial is known: one revocation row, status revoked", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [
      [1, "0a1b", 24],
      [2, "0c2d", 24],
    ]);
    const [item] = await runBin(certs, {
      pool: db.pool,
      id: fleet.schema,
      options: fleetOptions(fleet),
      items: [{ handler: "revoke", payload: { id: 1, reason: "keyCompromise" } }],
    });
    expect(item).toMatchObject({ status: "done", processed: 1, lastError: null });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoked", 2: "active" });
    expect(await revocations(db.pool, fleet)).toEqual([{ serial: "0a1b", reason: "keyCompromise" }]);
  });

  it("defers a certificate without a serial (revoking, the item succeeds), then the sweep revokes it exactly once", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [[1, null, 24]]);
    const items = await runBin(certs, {
      pool: db.pool,
      id: fleet.schema,
      options: fleetOptions(fleet),
      items: [
        { handler: "revoke", payload: { id: "1", reason: "cessationOfOperation" } },
        { handler: "revoke", payload: { id: 1 } },
      ],
    });
    expect(items.map((i) => i.status)).toEqual(["done", "done"]);
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoking" });
    expect(await revocations(db.pool, fleet)).toEqual([]);

    await db.pool.query(`UPDATE ${fleet.t("certificates")} SET serial = 'ff00' WHERE id = 1`);
    const sweep = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet) });
    expect(sweep).toMatchObject({ status: "succeeded", processed: 1 });
    const again = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet) });
    expect(again.processed).toBe(0);
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoked" });
    expect(await revocations(db.pool, fleet)).toEqual([{ serial: "ff00", reason: "cessationOfOperation" }]);
  });

  it("is a no-op for a revoked certificate", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [[1, "01", 24, "revoked"]]);
    const [item] = await runBin(certs, {
      pool: db.pool,
      id: fleet.schema,
      options: fleetOptions(fleet),
      items: [{ handler: "revoke", payload: { id: 1 } }],
    });
    expect(item).toMatchObject({ status: "done", processed: 0 });
    expect(await revocations(db.pool, fleet)).toEqual([]);
  });

  it("fails at once, visibly, for a certificate that does not exist or a malformed id", async () => {
    const fleet = await createFleet(db.pool);
    const items = await runBin(certs, {
      pool: db.pool,
      id: fleet.schema,
      options: fleetOptions(fleet),
      items: [
        { handler: "revoke", payload: { id: 404 } },
        { handler: "revoke", payload: { id: "not-a-number" } },
      ],
    });
    expect(items.map((i) => [i.status, i.attempts])).toEqual([
      ["failed", 1],
      ["failed", 1],
    ]);
    expect(items[0]!.lastError).toBe(`certificate 404 does not exist in ${fleet.t("certificates")}`);
    expect(items[1]!.lastError).toContain(`bin payload for ${fleet.schema}.revoke: id is not a valid key`);
  });

  describe.each([true, false])("duplicate items (unique index on the revocations' serial: %s)", (uniqueRevocations) => {
    it("two items for one certificate on a worker of concurrency 2, and two workers at once: one revocation row per serial", async () => {
      const fleet = await createFleet(db.pool, { uniqueRevocations });
      await addCertificates(db.pool, fleet, [
        [1, "aa", 24],
        [2, "bb", 24],
        [3, "cc", 24],
      ]);
      const options = fleetOptions(fleet);
      const twice = await runBin(certs, {
        pool: db.pool,
        id: fleet.schema,
        options,
        concurrency: 2,
        items: [
          { handler: "revoke", payload: { id: 1 } },
          { handler: "revoke", payload: { id: 1 } },
        ],
      });
      const parallel = await Promise.all(
        [0, 1, 2].map(() =>
          runBin(certs, {
            pool: db.pool,
            id: fleet.schema,
            options,
            concurrency: 2,
            items: [
              { handler: "revoke", payload: { id: 2 } },
              { handler: "revoke", payload: { id: 3 } },
              { handler: "revoke", payload: { id: 2 } },
            ],
          }),
        ),
      );
      expect([...twice, ...parallel.flat()].map((i) => i.status)).toEqual(Array(11).fill("done"));
      // Exactly one item per certificate changed it; the others found it revoked.
      expect([...twice, ...parallel.flat()].filter((i) => i.processed === 1)).toHaveLength(3);
      expect(await revocations(db.pool, fleet)).toEqual([
        { serial: "aa", reason: "unspecified" },
        { serial: "bb", reason: "unspecified" },
        { serial: "cc", reason: "unspecified" },
      ]);
      expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoked", 2: "revoked", 3: "revoked" });
    });
  });
});

describe("bin: credential", () => {
  it("revokes the certificate with a serial now, defers the other until its serial appears, and marks the credential revoked", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [
      [1, "robot-1", 24],
      [2, null, 24],
      [3, "other", 24],
    ]);
    await addCredentials(db.pool, fleet, [
      [10, 1, 2, 24],
      [11, 3, null, 24],
    ]);
    const [item] = await runBin(certs, {
      pool: db.pool,
      id: fleet.schema,
      options: fleetOptions(fleet),
      items: [{ handler: "credential", payload: { id: 10, reason: "superseded" } }],
    });
    expect(item).toMatchObject({ status: "done", processed: 3 });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoked", 2: "revoking", 3: "active" });
    expect(await statuses(db.pool, fleet, "credentials")).toEqual({ 10: "revoked", 11: "active" });
    expect(await revocations(db.pool, fleet)).toEqual([{ serial: "robot-1", reason: "superseded" }]);

    await db.pool.query(`UPDATE ${fleet.t("certificates")} SET serial = 'robot-2' WHERE id = 2`);
    const sweep = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet) });
    expect(sweep).toMatchObject({ status: "succeeded", processed: 1, tables: { certificates_revoked: 1 } });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoked", 2: "revoked", 3: "active" });
    expect(await statuses(db.pool, fleet, "credentials")).toEqual({ 10: "revoked", 11: "active" });
    expect(await revocations(db.pool, fleet)).toEqual([
      { serial: "robot-1", reason: "superseded" },
      { serial: "robot-2", reason: "superseded" },
    ]);
  });

  it("refuses the credential kind on an entry without credentials", async () => {
    const fleet = await createFleet(db.pool);
    const { credentials: _, ...options } = fleetOptions(fleet);
    await expect(
      runBin(certs, { pool: db.pool, id: fleet.schema, options, items: [{ handler: "credential", payload: { id: 1 } }] }),
    ).rejects.toMatchObject({
      code: "PAYLOAD",
      message: `bin payload for ${fleet.schema}.credential: this entry has no \`credentials\` option, so it revokes no credentials`,
    });
  });
});

describe("a third party's revoker module", () => {
  it("is loaded from a path relative to the config directory and writes in the status transaction", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [[1, "5e", 24]]);
    const options = fleetOptions(fleet, { module: "./fixtures/ledger-revoker.ts", options: { schema: fleet.schema } });
    const [item] = await runBin(certs, {
      pool: db.pool,
      id: fleet.schema,
      options,
      configDir,
      items: [{ handler: "revoke", payload: { id: 1 } }],
    });
    expect(item).toMatchObject({ status: "done", processed: 1 });
    const { rows } = await db.pool.query(`SELECT serial, reason, idempotency_key FROM ${fleet.t("revocation_ledger")}`);
    expect(rows).toEqual([{ serial: "5e", reason: "unspecified", idempotency_key: idempotencyKey("5e") }]);
    expect(idempotencyKey("5e")).toMatch(/^purger-revoke-[0-9a-f]{64}$/);
  });

  it("leaves no half state when the process dies between the revoker's write and the status update", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [[1, "dead", 24]]);
    const options = fleetOptions(fleet, {
      module: "./fixtures/ledger-revoker.ts",
      options: { schema: fleet.schema, crashAfterInsert: true },
    });
    const [item] = await runBin(certs, {
      pool: db.pool,
      id: fleet.schema,
      options,
      configDir,
      maxAttempts: 1,
      items: [{ handler: "revoke", payload: { id: 1 } }],
    });
    expect(item).toMatchObject({ status: "failed", lastError: "ledger revoker crashed after its insert" });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "active" });
    expect(await revocations(db.pool, fleet, "revocation_ledger")).toEqual([]);
  });

  it("is refused with PLUGIN when the module does not export a revoker", async () => {
    const fleet = await createFleet(db.pool);
    const options = fleetOptions(fleet, { module: "./fleet.ts" });
    await expect(runPlugin(certs, { pool: db.pool, id: fleet.schema, options, configDir })).rejects.toMatchObject({
      code: "PLUGIN",
      message:
        'options.revoker.module: "./fleet.ts" must export (as default) an object with a revoke() function, or a function returning one',
    });
  });
});
