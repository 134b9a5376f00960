/**
 * R7: the admin endpoint against a real PostgreSQL, over real HTTP.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binKinds, loadConfig, migrate, silentLogger, type PurgerConfig } from "@purger/core";
import { createTestDatabase } from "@purger/core/testing";
import { startAdminServer, type AdminServer } from "../src/http.js";

const TOKEN = "s3cret-token-for-tests";
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: AdminServer;
let base: string;
let config: PurgerConfig;

beforeAll(async () => {
  db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), "purger-http-"));
  const plugin = join(dir, "bin-plugin.ts");
  writeFileSync(
    plugin,
    `export default {
      name: "bin-plugin", version: "1.0.0", usesRetention: false,
      options: { type: "object", additionalProperties: false },
      bin: { prefix: { schema: { type: "object", properties: { prefix: { type: "string", minLength: 1 } }, required: ["prefix"], additionalProperties: false },
                       async handle() { return { processed: 1 }; } } },
    };\n`,
  );
  writeFileSync(
    join(dir, "purger.yaml"),
    `database:\n  url: ${db.url}\nhttp:\n  listen: 127.0.0.1:0\n  token: \${ADMIN_TOKEN}\nplugins:\n  - id: blobs\n    use: ./bin-plugin.ts\n    options: {}\n`,
  );
  config = await loadConfig({ cwd: dir, env: { ...process.env, ADMIN_TOKEN: TOKEN } });
  await migrate(db.pool, {
    workerSchema: config.worker.schema,
    kinds: binKinds(config.entries).map((k) => ({ kind: k.kind, entry: k.entry.id, handler: k.handlerName })),
  });
  server = await startAdminServer({ config, pool: db.pool, log: silentLogger });
  base = `http://127.0.0.1:${server.address.port}`;
});

afterAll(async () => {
  await server?.close();
  await db?.drop();
});

const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

describe("admin endpoint (R7)", () => {
  it("binds to loopback", () => {
    expect(server.address.host).toBe("127.0.0.1");
  });

  it("answers 401 without a token or with a wrong one, on every route", async () => {
    for (const path of ["/v1/status", "/metrics", "/v1/bin/blobs.prefix"]) {
      expect((await fetch(`${base}${path}`)).status).toBe(401);
      expect((await fetch(`${base}${path}`, { headers: auth("s3cret-token-for-test") })).status).toBe(401);
      expect((await fetch(`${base}${path}`, { headers: { authorization: TOKEN } })).status).toBe(401);
    }
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM purger.bin");
    expect(rows[0].n).toBe(0);
  });

  it("POST /v1/bin/<kind> validates the payload and enqueues it", async () => {
    const ok = await fetch(`${base}/v1/bin/blobs.prefix`, {
      method: "POST",
      headers: auth(),
      body: JSON.stringify({ prefix: "teams/42/" }),
    });
    expect(ok.status).toBe(201);
    const { id } = (await ok.json()) as { id: string };
    const { rows } = await db.pool.query("SELECT kind, payload, status FROM purger.bin WHERE id = $1", [id]);
    expect(rows).toEqual([{ kind: "blobs.prefix", payload: { prefix: "teams/42/" }, status: "pending" }]);

    const bad = await fetch(`${base}/v1/bin/blobs.prefix`, { method: "POST", headers: auth(), body: JSON.stringify({ prefix: "" }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe(
      "bin payload for blobs.prefix: /prefix must NOT have fewer than 1 characters",
    );
    const unknown = await fetch(`${base}/v1/bin/blobs.nope`, { method: "POST", headers: auth(), body: "{}" });
    expect(unknown.status).toBe(400);
    const notJson = await fetch(`${base}/v1/bin/blobs.prefix`, { method: "POST", headers: auth(), body: "{prefix:" });
    expect(notJson.status).toBe(400);
    const huge = await fetch(`${base}/v1/bin/blobs.prefix`, {
      method: "POST",
      headers: auth(),
      body: JSON.stringify({ prefix: "x".repeat(100_000) }),
    });
    expect(huge.status).toBe(413);
    const hostile = await fetch(`${base}/v1/bin/blobs.prefix`, {
      method: "POST",
      headers: auth(),
      body: JSON.stringify({ prefix: "'; DROP TABLE purger.bin; --/" }),
    });
    expect(hostile.status).toBe(201);
    const count = await db.pool.query("SELECT count(*)::int AS n FROM purger.bin");
    expect(count.rows[0].n).toBe(2);
  });

  it("GET /v1/status and /metrics show the bin depth per kind", async () => {
    const status = (await (await fetch(`${base}/v1/status`, { headers: auth() })).json()) as { bin: { kind: string; pending: number }[] };
    expect(status.bin).toContainEqual(expect.objectContaining({ kind: "blobs.prefix", pending: 2 }));
    const metrics = await (await fetch(`${base}/metrics`, { headers: auth() })).text();
    expect(metrics).toContain('purger_bin_pending{kind="blobs.prefix"} 2');
    expect(metrics).toContain('purger_bin_failed{kind="blobs.prefix"} 0');
  });
});
