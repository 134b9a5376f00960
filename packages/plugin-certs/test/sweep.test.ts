import { PurgerEventEmitter } from "@purger/core/host";
import { checkPlugin, createTestDatabase, runPlugin, type RunResult } from "@purger/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import certs from "../src/index.js";
import { addCertificates, addCredentials, createFleet, fleetOptions, revocations, statuses, type Fleet } from "./fleet.js";
import { startWebhookServer, type WebhookServer } from "./webhook-server.js";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase("plugin-certs-sweep");
});
afterAll(async () => {
  await db?.drop();
});

/** Certificates 1–9 and credentials 101–108 covering every rule of the sweep. */
async function seed(fleet: Fleet): Promise<void> {
  await addCertificates(db.pool, fleet, [
    [1, "01", -1], // active, past notAfter → expired
    [2, "02", 24], // active, valid → untouched
    [3, null, -48], // active, past notAfter, no serial yet → expired
    [4, "04", null], // no notAfter → never expires
    [5, "05", -5, "revoked"], // revoked → untouched
    [6, "06", 24, "revoking"], // revoking with serial → revoked
    [7, null, 24, "revoking"], // revoking without serial → waits
    [8, "08", -2, "expired"], // already expired
    [9, "09", 24], // active, valid
  ]);
  await addCredentials(db.pool, fleet, [
    [101, 1, null, null], // its certificate expires → expired
    [102, 2, 9, null], // both valid → active
    [103, 2, 5, null], // one revoked → expired
    [104, 2, 9, -1], // own expiresAt passed → expired
    [105, 6, null, 24], // its certificate gets revoked by the sweep → expired
    [106, 7, null, null], // certificate revoking, serial unknown → active (not revoked yet)
    [107, 8, 2, 48, "revoked"], // revoked credential → untouched
    [108, null, null, null], // references nothing → active
  ]);
}

const expectedCertificates = {
  1: "expired",
  2: "active",
  3: "expired",
  4: "active",
  5: "revoked",
  6: "revoked",
  7: "revoking",
  8: "expired",
  9: "active",
};
const expectedCredentials = {
  101: "expired",
  102: "active",
  103: "expired",
  104: "expired",
  105: "expired",
  106: "active",
  107: "revoked",
  108: "active",
};

describe("sweep", () => {
  it.each([1000, 2, 1])(
    "expires certificates and credentials and revokes pending certificates (batchSize %i); a second sweep changes nothing",
    async (batchSize) => {
      const fleet = await createFleet(db.pool);
      await seed(fleet);
      const events = new PurgerEventEmitter();
      let total: number | null = null;
      events.on("run:start", (e) => (total = e.total));

      const first = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet), batchSize, events });
      expect(first.status).toBe("succeeded");
      expect(await statuses(db.pool, fleet, "certificates")).toEqual(expectedCertificates);
      expect(await statuses(db.pool, fleet, "credentials")).toEqual(expectedCredentials);
      expect(await revocations(db.pool, fleet)).toEqual([{ serial: "06", reason: "unspecified" }]);
      expect(first.tables).toEqual({ certificates_expired: 2, certificates_revoked: 1, credentials_expired: 4 });
      expect(first.processed).toBe(7);
      expect(total).toBe(7);

      const second = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet), batchSize });
      expect(second).toMatchObject({ status: "succeeded", processed: 0 });
      expect(await statuses(db.pool, fleet, "certificates")).toEqual(expectedCertificates);
      expect(await statuses(db.pool, fleet, "credentials")).toEqual(expectedCredentials);
      expect(await revocations(db.pool, fleet)).toHaveLength(1);
    },
  );

  it("revokes a pending certificate once its serial appears, with the reason kept for it", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [[1, null, 24, "revoking"]]);
    await db.pool.query(`UPDATE ${fleet.t("certificates")} SET revoke_reason = 'keyCompromise'`);

    const before = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet) });
    expect(before.processed).toBe(0);
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoking" });

    await db.pool.query(`UPDATE ${fleet.t("certificates")} SET serial = 'aa01'`);
    const after = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet) });
    expect(after).toMatchObject({ status: "succeeded", processed: 1, tables: { certificates_revoked: 1 } });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoked" });
    expect(await revocations(db.pool, fleet)).toEqual([{ serial: "aa01", reason: "keyCompromise" }]);
  });

  it("works with a mixed-case table name with a space, an enum status, a uuid key and a date notAfter", async () => {
    const fleet = await createFleet(db.pool);
    const s = fleet.schema;
    await db.pool.query(`
      CREATE TYPE ${s}."Cert State" AS ENUM ('valid', 'lapsed', 'pending', 'gone');
      CREATE TABLE ${s}."Robot Certs" ("Id" uuid PRIMARY KEY, "Serial" text, "Valid Until" date, "State" ${s}."Cert State" NOT NULL);
      INSERT INTO ${s}."Robot Certs" VALUES
        ('00000000-0000-0000-0000-000000000001', 'a', current_date - 1, 'valid'),
        ('00000000-0000-0000-0000-000000000002', 'b', current_date, 'valid'),
        ('00000000-0000-0000-0000-000000000003', 'c', current_date + 1, 'pending');`);
    const options = {
      certificates: { table: `${s}."Robot Certs"`, serial: "Serial", notAfter: "Valid Until", status: "State" },
      statuses: { active: "valid", expired: "lapsed", revoking: "pending", revoked: "gone" },
      revoker: { table: { table: fleet.t("revocations") } },
    };
    const result = await runPlugin(certs, { pool: db.pool, id: s, options, batchSize: 1 });
    expect(result).toMatchObject({ status: "succeeded", processed: 2, tables: { certificates_expired: 1, certificates_revoked: 1 } });
    const { rows } = await db.pool.query(`SELECT "Id"::text AS id, "State"::text AS state FROM ${s}."Robot Certs" ORDER BY 1`);
    expect(rows.map((r) => `${r.id.slice(-1)} ${r.state}`)).toEqual(["1 lapsed", "2 valid", "3 gone"]);
    expect(await revocations(db.pool, fleet)).toEqual([{ serial: "c", reason: "unspecified" }]);
  });

  describe("dry run", () => {
    let hook: WebhookServer;
    beforeAll(async () => {
      hook = await startWebhookServer();
    });
    afterAll(async () => {
      await hook.close();
    });

    it.each([
      ["table", 1000],
      ["webhook", 2],
    ] as const)("counts what the real run changes and calls no revoker (%s revoker, batchSize %i)", async (kind, batchSize) => {
      const fleet = await createFleet(db.pool);
      await seed(fleet);
      const options = fleetOptions(fleet, kind === "webhook" ? { webhook: { url: hook.url } } : undefined);
      hook.requests.length = 0;

      const dry = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options, batchSize, dryRun: true });
      expect(dry.status).toBe("succeeded");
      expect(hook.requests).toHaveLength(0);
      expect(await revocations(db.pool, fleet)).toEqual([]);
      expect(await statuses(db.pool, fleet, "certificates")).toMatchObject({ 1: "active", 3: "active", 6: "revoking" });
      expect(await statuses(db.pool, fleet, "credentials")).toMatchObject({ 101: "active", 105: "active" });
      expect(dry.sample).toContain("certificate 6 (serial 06)");

      const real = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options, batchSize });
      expect(pick(dry)).toEqual(pick(real));
      expect(real.processed).toBe(7);
      expect(hook.requests).toHaveLength(kind === "webhook" ? 1 : 0);
    });
  });

  it("ends failed, with every other change committed, when a revocation is refused; the certificate stays revoking", async () => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [
      [1, "bad", 24, "revoking"],
      [2, "good", 24, "revoking"],
      [3, "03", -1],
    ]);
    const options = fleetOptions(fleet, { module: "./fixtures/ledger-revoker.ts", options: { schema: fleet.schema, refuse: "bad" } });
    const result = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options, configDir: import.meta.dirname });
    expect(result.status).toBe("failed");
    expect(result.error).toBe("1 revocation(s) failed and stay revoking for the next sweep: certificate 1: the ledger refuses serial bad");
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoking", 2: "revoked", 3: "expired" });
    expect(await revocations(db.pool, fleet, "revocation_ledger")).toEqual([{ serial: "good", reason: "unspecified" }]);
  });
});

describe("prepare and check", () => {
  it("refuses a missing table or column with TARGET before touching anything", async () => {
    const fleet = await createFleet(db.pool);
    const options = fleetOptions(fleet);
    (options.certificates as Record<string, string>).notAfter = "not_afer";
    await expect(runPlugin(certs, { pool: db.pool, id: fleet.schema, options })).rejects.toMatchObject({
      code: "TARGET",
      message: `options.certificates.notAfter: column "not_afer" does not exist in ${fleet.t("certificates")}`,
      hint: 'did you mean "not_after"?',
    });
    await expect(
      runPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet, { table: { table: fleet.t("nope") } }) }),
    ).rejects.toMatchObject({ code: "TARGET", message: `options.revoker.table.table: table "${fleet.t("nope")}" does not exist` });
  });

  it("reports unknown status values, a missing index, a missing unique index and enum labels", async () => {
    const fleet = await createFleet(db.pool, { uniqueRevocations: false });
    await addCertificates(db.pool, fleet, [[1, "01", 1, "pending"]]);
    await db.pool.query(`DROP INDEX ${fleet.schema}.certificates_not_after_idx`);
    await db.pool.query(`CREATE TYPE ${fleet.schema}.cred_status AS ENUM ('active', 'expired');
      ALTER TABLE ${fleet.t("credentials")} ALTER status DROP DEFAULT, ALTER status TYPE ${fleet.schema}.cred_status USING status::${fleet.schema}.cred_status`);
    const found = await checkPlugin(certs, { pool: db.pool, id: fleet.schema, options: fleetOptions(fleet) });
    const s = fleet.t("");
    expect(found.map((d) => `${d.level}: ${d.message}`.replaceAll(s, "<s>."))).toEqual([
      'warn: certificates <s>.certificates: status holds values the entry does not know ("pending"); those rows are left alone',
      "warn: certificates <s>.certificates: no index on not_after, so every sweep reads the whole table to find expired certificates",
      `error: credentials <s>.credentials: status is the enum <s>.cred_status without "revoked"; an update to it would fail`,
      "ok: credentials <s>.credentials: every status value is a known status",
      "ok: credentials <s>.credentials: expires_at is a timestamp without time zone, read as wall-clock time in UTC (option timeZone)",
      "warn: revocations <s>.revocations: no unique index on serial; each serial is still recorded once (under an advisory lock), but only purger's own writes are protected",
    ]);
  });

  it("reports a reachable webhook and an unreachable one", async () => {
    const fleet = await createFleet(db.pool);
    const hook = await startWebhookServer();
    try {
      const ok = await checkPlugin(certs, { pool: db.pool, options: fleetOptions(fleet, { webhook: { url: hook.url, token: "t0ken" } }) });
      expect(ok.at(-1)).toEqual({ level: "ok", message: `revoker webhook ${hook.url} is reachable (HEAD answered 405)` });
    } finally {
      await hook.close();
    }
    const down = await checkPlugin(certs, { pool: db.pool, options: fleetOptions(fleet, { webhook: { url: hook.url, timeout: "1s" } }) });
    expect(down.at(-1)).toMatchObject({ level: "error", message: expect.stringContaining(`revoker webhook ${hook.url} is unreachable`) });
  });

  it("describes the entry without secrets", () => {
    expect(
      certs.describe!({
        certificates: { table: "robot_certificates", serial: "serial", notAfter: "not_after", status: "status" },
        statuses: { active: "active", expired: "expired", revoking: "revoking", revoked: "revoked" },
        credentials: { table: "provisioning_credentials", certificates: ["certificate_id"], status: "status" },
        revoker: { webhook: { url: "https://user:pw@ca.example/revoke?key=s3cret", token: "t0ken", timeout: "10s", attempts: 3 } },
        timeZone: "UTC",
      }),
    ).toBe("certificates robot_certificates + credentials provisioning_credentials → webhook https://ca.example/revoke");
  });
});

function pick(result: RunResult) {
  return { status: result.status, processed: result.processed, tables: result.tables };
}
