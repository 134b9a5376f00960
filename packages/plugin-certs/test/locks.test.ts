/**
 * A revoker that does not answer must not hold purger's (or the user's) rows:
 * the sweep calls it with no row locked, bounded by the webhook's `timeout`
 * and the entry's `timeout`, and the bin handlers' transactions give up on a
 * row lock after a few seconds instead of queueing behind it.
 */
import { createTestDatabase, runBin, runPlugin } from "@purger/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import certs from "../src/index.js";
import { addCertificates, createFleet, fleetOptions, statuses, type Fleet } from "./fleet.js";
import { startWebhookServer, type WebhookServer } from "./webhook-server.js";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let hook: WebhookServer;
beforeAll(async () => {
  db = await createTestDatabase("plugin-certs-locks");
  hook = await startWebhookServer();
});
afterEach(() => {
  hook.release();
});
afterAll(async () => {
  await hook?.close();
  await db?.drop();
});

/** Certificate 1 (serial "hang") is the one the webhook never answers; 2 and 4 revoke; 3 expires. */
async function fleetWithHangingSerial(): Promise<Fleet> {
  const fleet = await createFleet(db.pool);
  await addCertificates(db.pool, fleet, [
    [1, "hang", 24, "revoking"],
    [2, "good", 24, "revoking"],
    [3, "03", -1],
    [4, "fine", 24, "revoking"],
  ]);
  hook.requests.length = 0;
  hook.answer = (_, request) => ((request.body as { serial: string }).serial === "hang" ? { status: 503, hang: true } : { status: 204 });
  return fleet;
}

/** Lock the rows from another connection without waiting: throws 55P03 when a purger transaction holds one. */
async function lockNowait(fleet: Fleet): Promise<number[]> {
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query<{ id: string }>(`SELECT id FROM ${fleet.t("certificates")} ORDER BY id FOR UPDATE NOWAIT`);
    return rows.map((r) => Number(r.id));
  } finally {
    await client.query("ROLLBACK");
    client.release();
  }
}

describe("the sweep and a webhook that does not answer", () => {
  it("holds no row lock during the call: another connection locks every certificate NOWAIT while it hangs", async () => {
    const fleet = await fleetWithHangingSerial();
    const options = fleetOptions(fleet, { webhook: { url: hook.url, attempts: 1, timeout: "10m" } });
    const run = runPlugin(certs, { pool: db.pool, id: fleet.schema, options });

    const hanging = await hook.hanging();
    expect(hanging.body).toEqual({ serial: "hang", reason: "unspecified" });
    expect(await lockNowait(fleet)).toEqual([1, 2, 3, 4]);
    hook.release();

    const result = await run;
    expect(result.status).toBe("failed");
    expect(result.error).toBe(
      `1 revocation(s) failed and stay revoking for the next sweep: certificate 1: webhook ${hook.url} answered 503 Service Unavailable (serial hang; 1 attempts)`,
    );
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoking", 2: "revoked", 3: "expired", 4: "revoked" });
  });

  it("gives up on the call after the webhook's timeout; the certificate stays revoking, the others are revoked", async () => {
    const fleet = await fleetWithHangingSerial();
    const options = fleetOptions(fleet, { webhook: { url: hook.url, attempts: 1, timeout: "200ms" } });
    const result = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options });
    expect(result.status).toBe("failed");
    expect(result.error).toBe(
      `1 revocation(s) failed and stay revoking for the next sweep: certificate 1: webhook ${hook.url} did not answer within 200ms (serial hang; 1 attempts)`,
    );
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoking", 2: "revoked", 3: "expired", 4: "revoked" });
    expect(hook.requests.map((r) => (r.body as { serial: string }).serial)).toEqual(["hang", "good", "fine"]);
  });

  it(
    "stops the call at the entry's timeout (the webhook's is longer); the next slice revokes the others",
    { timeout: 30_000 },
    async () => {
      const fleet = await fleetWithHangingSerial();
      const options = fleetOptions(fleet, { webhook: { url: hook.url, attempts: 3, timeout: "10m" } });
      const result = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options, timeout: "1s" });
      expect(result.status).toBe("failed");
      expect(result.error).toBe(
        "1 revocation(s) failed and stay revoking for the next sweep: certificate 1: the revoker had not finished when the entry's timeout ended the slice",
      );
      expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoking", 2: "revoked", 3: "expired", 4: "revoked" });
      expect(hook.requests.filter((r) => (r.body as { serial: string }).serial === "hang")).toHaveLength(1);
    },
  );
});

describe("the sweep interrupted during a call", () => {
  it("aborts the call on shutdown and leaves the certificate revoking; the next run revokes it", async () => {
    const fleet = await fleetWithHangingSerial();
    const options = fleetOptions(fleet, { webhook: { url: hook.url, attempts: 3, timeout: "10m" } });
    const stop = new AbortController();
    const run = runPlugin(certs, { pool: db.pool, id: fleet.schema, options, signal: stop.signal });
    await hook.hanging();
    stop.abort();
    expect(await run).toMatchObject({ status: "interrupted", error: "interrupted" });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoking", 2: "revoking", 3: "expired", 4: "revoking" });

    hook.answer = () => ({ status: 204 });
    const again = await runPlugin(certs, { pool: db.pool, id: fleet.schema, options });
    expect(again).toMatchObject({ status: "succeeded", tables: { certificates_revoked: 3 } });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "revoked", 2: "revoked", 3: "expired", 4: "revoked" });
  });
});

describe("bin handlers and a row another transaction holds", () => {
  it.each([
    ["revoke", 1],
    ["credential", 101],
  ])("%s gives up after its lock_timeout (the item fails, nothing changes) instead of waiting", async (handler, id) => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [[1, "01", 24]]);
    await db.pool.query(`INSERT INTO ${fleet.t("credentials")} (id, robot_certificate_id) VALUES (101, 1)`);
    const holder = await db.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM ${fleet.t(handler === "revoke" ? "certificates" : "credentials")} FOR UPDATE`);
      const [item] = await runBin(certs, {
        pool: db.pool,
        id: fleet.schema,
        options: fleetOptions(fleet),
        maxAttempts: 1,
        items: [{ handler, payload: { id } }],
      });
      expect(item).toMatchObject({ status: "failed", attempts: 1 });
      expect(item!.lastError).toBe(
        `${handler === "revoke" ? "certificate" : "credential"} ${id}: a row it needs stayed locked by another transaction for 5s (lock_timeout); retried later`,
      );
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    expect(await statuses(db.pool, fleet, "certificates")).toEqual({ 1: "active" });
    expect(await statuses(db.pool, fleet, "credentials")).toEqual({ 101: "active" });
  });
});

describe("bin handlers and a webhook that does not answer", () => {
  it.each([
    ["revoke", 1],
    ["credential", 101],
  ])("%s holds no row lock during the call: the certificate and credential lock NOWAIT while it hangs", async (handler, id) => {
    const fleet = await createFleet(db.pool);
    await addCertificates(db.pool, fleet, [
      [1, "hang", 24],
      [2, null, 24],
    ]);
    await db.pool.query(`INSERT INTO ${fleet.t("credentials")} (id, robot_certificate_id, ca_certificate_id) VALUES (101, 1, 2)`);
    hook.requests.length = 0;
    hook.answer = () => ({ status: 204, hang: true });
    const options = fleetOptions(fleet, { webhook: { url: hook.url, attempts: 1, timeout: "10m" } });
    const run = runBin(certs, { pool: db.pool, id: fleet.schema, options, maxAttempts: 1, items: [{ handler, payload: { id } }] });

    await hook.hanging();
    expect(await lockNowait(fleet)).toEqual([1, 2]);
    const client = await db.pool.connect();
    try {
      await client.query("BEGIN");
      const { rows } = await client.query(`SELECT id FROM ${fleet.t("credentials")} FOR UPDATE NOWAIT`);
      expect(rows).toHaveLength(1);
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
    hook.release();

    const [item] = await run;
    expect(item).toMatchObject({ status: "done", lastError: null });
    expect(await statuses(db.pool, fleet, "certificates")).toEqual(
      handler === "revoke" ? { 1: "revoked", 2: "active" } : { 1: "revoked", 2: "revoking" },
    );
    expect(await statuses(db.pool, fleet, "credentials")).toEqual({ 101: handler === "revoke" ? "active" : "revoked" });
    expect(hook.requests.map((r) => r.body)).toEqual([{ serial: "hang", reason: "unspecified" }]);
  });
});
