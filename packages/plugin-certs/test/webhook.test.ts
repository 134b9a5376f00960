import { createTestDatabase, runBin } from "@purger/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import certs, { idempotencyKey } from "../src/index.js";
import { addCertificates, captureLogger, createFleet, fleetOptions, statuses, type Fleet } from "./fleet.js";
import { startWebhookServer, type Reply, type WebhookServer } from "./webhook-server.js";

const TOKEN = "s3cr3t-t0ken-never-logged";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let hook: WebhookServer;
beforeAll(async () => {
  db = await createTestDatabase("plugin-certs-webhook");
  hook = await startWebhookServer();
});
afterAll(async () => {
  await hook?.close();
  await db?.drop();
});

let log: ReturnType<typeof captureLogger>;
afterEach(() => {
  // Whatever happened, the token is in no log line.
  expect(log.lines.length).toBeGreaterThan(0);
  expect(log.lines.join("\n")).not.toContain(TOKEN);
});

/** Revoke certificate 1 (serial "c0ffee") through the webhook, answering with `replies` in turn (the last one repeats). */
async function revokeThrough(replies: Reply[], extra: { timeout?: string; maxAttempts?: number } = {}) {
  const fleet: Fleet = await createFleet(db.pool);
  await addCertificates(db.pool, fleet, [[1, "c0ffee", 24]]);
  hook.requests.length = 0;
  hook.answer = (n) => replies[Math.min(n, replies.length) - 1]!;
  log = captureLogger();
  const options = fleetOptions(fleet, { webhook: { url: hook.url, token: TOKEN, ...(extra.timeout ? { timeout: extra.timeout } : {}) } });
  const [item] = await runBin(certs, {
    pool: db.pool,
    id: fleet.schema,
    options,
    log,
    maxAttempts: extra.maxAttempts ?? 3,
    items: [{ handler: "revoke", payload: { id: 1, reason: "keyCompromise" } }],
  });
  return { item: item!, status: (await statuses(db.pool, fleet, "certificates"))[1], fleet };
}

describe("webhook revoker", () => {
  it("POSTs { serial, reason } with the bearer token and the idempotency key; 2xx is success", async () => {
    const { item, status } = await revokeThrough([{ status: 201, body: "ok" }]);
    expect(item).toMatchObject({ status: "done", processed: 1 });
    expect(status).toBe("revoked");
    expect(hook.requests).toHaveLength(1);
    const [request] = hook.requests;
    expect(request!.method).toBe("POST");
    expect(request!.url).toBe("/v1/revocations");
    expect(request!.body).toEqual({ serial: "c0ffee", reason: "keyCompromise" });
    expect(request!.headers).toMatchObject({
      authorization: `Bearer ${TOKEN}`,
      "idempotency-key": idempotencyKey("c0ffee"),
      "content-type": "application/json",
    });
  });

  it("fails a 4xx at once, visibly, with the status and body in lastError (and no token, even when echoed)", async () => {
    const { item, status } = await revokeThrough([{ status: 422, body: `unknown serial c0ffee (you sent Bearer ${TOKEN})` }]);
    expect(item).toMatchObject({ status: "failed", attempts: 1 });
    expect(item.lastError).toBe(
      `webhook ${hook.url} answered 422 Unprocessable Entity: unknown serial c0ffee (you sent Bearer ***) (serial c0ffee; not retried: a 422 is a refusal)`,
    );
    expect(status).toBe("active");
    expect(hook.requests).toHaveLength(1);
  });

  it("retries a 5xx and then succeeds, with the same idempotency key", async () => {
    const { item, status } = await revokeThrough([{ status: 503, body: "busy" }, { status: 429 }, { status: 200 }]);
    expect(item).toMatchObject({ status: "done", attempts: 1 });
    expect(status).toBe("revoked");
    expect(hook.requests.map((r) => r.headers["idempotency-key"])).toEqual(Array(3).fill(idempotencyKey("c0ffee")));
    expect(log.lines.filter((l) => l.includes("certs:webhook:retry"))).toHaveLength(2);
  });

  it("retries a request that times out (the server answers too late)", async () => {
    const { item, status } = await revokeThrough([{ status: 200, delayMs: 1_000 }, { status: 200 }], { timeout: "150ms" });
    expect(item).toMatchObject({ status: "done", attempts: 1 });
    expect(status).toBe("revoked");
    expect(hook.requests).toHaveLength(2);
    expect(log.lines.some((l) => l.includes("did not answer within 150ms"))).toBe(true);
  });

  it("hands a persistent 5xx to the bin's retry, which ends the item failed; every request carries the same key", async () => {
    const { item, status } = await revokeThrough([{ status: 500, body: "CA down" }], { maxAttempts: 2 });
    expect(item).toMatchObject({ status: "failed", attempts: 2 });
    expect(item.lastError).toBe(`webhook ${hook.url} answered 500 Internal Server Error: CA down (serial c0ffee; 3 attempts)`);
    expect(status).toBe("active");
    expect(hook.requests).toHaveLength(6);
    expect(new Set(hook.requests.map((r) => r.headers["idempotency-key"]))).toEqual(new Set([idempotencyKey("c0ffee")]));
  });
});
