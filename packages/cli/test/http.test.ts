/**
 * R7: the admin endpoint against a real PostgreSQL, over real HTTP; the
 * hostile clients (slow headers, oversized or endless bodies, too many
 * connections) speak raw HTTP over `net` sockets.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binKinds, createPool, loadConfig, migrate, schemaVersion, silentLogger, type PurgerConfig } from "@purger/core/host";
import { createTestDatabase } from "@purger/core/testing";
import { startAdminServer, type AdminServer } from "../src/http.js";
import { idSpan, NOTES_PLUGIN, purger, retentionEntry, runRows, seedTable, spawnPurger, tempDir } from "./helpers.js";

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
                       async handle() { return { processed: 1 }; } },
             note: { schema: { type: "object" }, async handle() { return { processed: 1 }; } } },
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

/** A raw client: what the server sent, and whether (and when) it closed the connection. */
interface RawClient {
  socket: Socket;
  received(): string;
  /** Resolves with everything received once the server has closed the connection. */
  closed: Promise<string>;
  /** Resolves once `text` has been received. */
  waitFor(text: string): Promise<string>;
}

function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    const waiters: Array<() => void> = [];
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      data += chunk;
      for (const waiter of waiters.splice(0)) waiter();
    });
    socket.on("error", () => {});
    const closed = new Promise<string>((done) => socket.on("close", () => done(data)));
    const waitFor = (text: string): Promise<string> =>
      new Promise((done, fail) => {
        const check = () => {
          if (data.includes(text)) done(data);
          else if (socket.destroyed) fail(new Error(`closed before ${JSON.stringify(text)} arrived; received ${JSON.stringify(data)}`));
          else waiters.push(check);
        };
        socket.once("close", check);
        check();
      });
    socket.once("connect", () => resolve({ socket, received: () => data, closed, waitFor }));
    socket.once("error", reject);
  });
}

/** The status lines of the responses in raw received text. */
const statusLines = (raw: string): string[] => raw.match(/^HTTP\/1\.1 \d{3} .*$/gm) ?? [];
const bodyOf = (raw: string): unknown => JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4));
const binCount = async (): Promise<number> => (await db.pool.query("SELECT count(*)::int AS n FROM purger.bin")).rows[0].n as number;

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

describe("admin endpoint against hostile clients", () => {
  it("answers 413 on a Content-Length over the cap before reading the body, then closes the connection", async () => {
    const before = await binCount();
    const client = await rawClient(server.address.port);
    client.socket.write(
      `POST /v1/bin/blobs.prefix HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n`,
    );
    // Not a byte of the body is sent: the answer must come from the header alone.
    const raw = await client.closed;
    expect(statusLines(raw)).toEqual(["HTTP/1.1 413 Payload Too Large"]);
    expect(raw.toLowerCase()).toContain("connection: close");
    expect(bodyOf(raw)).toEqual({ error: "the body is larger than 70000 bytes (Content-Length: 5000000)" });
    expect(await binCount()).toBe(before);
  });

  it("answers 413 as soon as a chunked body passes the cap, without waiting for its end", async () => {
    const client = await rawClient(server.address.port);
    client.socket.write(
      `POST /v1/bin/blobs.note HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    const chunk = `{"n":"${"x".repeat(39_990)}",`;
    for (let i = 0; i < 2; i++) client.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    // The final zero-length chunk never comes.
    const raw = await client.closed;
    expect(statusLines(raw)).toEqual(["HTTP/1.1 413 Payload Too Large"]);
    expect(bodyOf(raw)).toEqual({ error: "the body is larger than 70000 bytes" });
  });

  it("closes the connection after a 401: a pipelined second request gets no answer", async () => {
    const client = await rawClient(server.address.port);
    const request = "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
    client.socket.write(request + request);
    const raw = await client.closed;
    expect(statusLines(raw)).toEqual(["HTTP/1.1 401 Unauthorized"]);
    expect(raw.toLowerCase()).toContain("connection: close");
  });

  it("drops a client that sends its headers or its body too slowly (slowloris), with the header and request timeouts", async () => {
    const slow = await startAdminServer({
      config,
      pool: db.pool,
      log: silentLogger,
      limits: { headersTimeoutMs: 300, requestTimeoutMs: 600 },
    });
    try {
      const client = await rawClient(slow.address.port);
      client.socket.write("GET /v1/status HTTP/1.1\r\nHost: x\r\n");
      // ...and the blank line that ends the headers never comes.
      const raw = await client.closed;
      expect(statusLines(raw)).toEqual(["HTTP/1.1 408 Request Timeout"]);
      // A body that trickles in and stops: the request timeout.
      const trickle = await rawClient(slow.address.port);
      trickle.socket.write(
        `POST /v1/bin/blobs.prefix HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100\r\n\r\n{"prefix":`,
      );
      expect(statusLines(await trickle.closed)).toEqual(["HTTP/1.1 408 Request Timeout"]);
    } finally {
      await slow.close();
    }
  });

  it("refuses connections past http.maxConnections and serves again once one closes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "purger-http-cap-"));
    writeFileSync(
      join(dir, "purger.yaml"),
      `database:\n  url: ${db.url}\nhttp:\n  listen: 127.0.0.1:0\n  token: ${TOKEN}\n  maxConnections: 2\nplugins: []\n`,
    );
    const capped = await startAdminServer({ config: await loadConfig({ cwd: dir, env: {} }), pool: db.pool, log: silentLogger });
    try {
      const first = await rawClient(capped.address.port);
      const second = await rawClient(capped.address.port);
      const third = await rawClient(capped.address.port);
      expect(await third.closed).toBe("");
      const request = `GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;
      second.socket.write(request);
      expect(statusLines(await second.waitFor("\r\n\r\n"))).toEqual(["HTTP/1.1 200 OK"]);
      first.socket.destroy();
      await first.closed;
      // The server learns of the close a moment after the client: try until a connection is kept.
      let answer = "";
      for (let attempt = 0; attempt < 100 && answer === ""; attempt++) {
        const next = await rawClient(capped.address.port);
        next.socket.write(request);
        answer = await Promise.race([next.waitFor("\r\n\r\n").catch(() => ""), next.closed.then(() => "")]);
        next.socket.destroy();
        if (answer === "") await sleep(20);
      }
      expect(statusLines(answer)).toEqual(["HTTP/1.1 200 OK"]);
      second.socket.destroy();
    } finally {
      await capped.close();
    }
  });

  it("answers 400 with the reason to malformed input, never 500", async () => {
    const post = async (path: string, body: string) => {
      const response = await fetch(`${base}${path}`, { method: "POST", headers: auth(), body });
      return { status: response.status, body: (await response.json()) as unknown };
    };
    const before = await binCount();
    expect(await post("/v1/bin/%E0%A4%A", "{}")).toMatchInlineSnapshot(`
      {
        "body": {
          "error": "the path is not valid percent-encoding: "/v1/bin/%E0%A4%A"",
        },
        "status": 400,
      }
    `);
    expect(await post("/v1/bin/blobs.prefix%00", '{"prefix":"a/"}')).toMatchInlineSnapshot(`
      {
        "body": {
          "error": "the bin kind in the path holds a control character: "blobs.prefix\\u0000"",
        },
        "status": 400,
      }
    `);
    expect(await post("/v1/bin/blobs.prefix", '{"prefix":"a\\u0000b/"}')).toMatchInlineSnapshot(`
      {
        "body": {
          "error": "bin payload for blobs.prefix: /prefix holds \\u0000, which PostgreSQL cannot store in JSON",
        },
        "status": 400,
      }
    `);
    expect(await post("/v1/bin/blobs.note", '{"note":{"\\u0000":1}}')).toMatchInlineSnapshot(`
      {
        "body": {
          "error": "bin payload for blobs.note: the key /note/\\u0000 holds \\u0000, which PostgreSQL cannot store in JSON",
        },
        "status": 400,
      }
    `);
    expect(await post("/v1/bin/blobs.note", '{"note":"\\ud800"}')).toMatchInlineSnapshot(`
      {
        "body": {
          "error": "bin payload for blobs.note: /note holds an unpaired UTF-16 surrogate, which PostgreSQL cannot store in JSON",
        },
        "status": 400,
      }
    `);
    const deep = `{"note":${"[".repeat(30_000)}${"]".repeat(30_000)}}`;
    expect(await post("/v1/bin/blobs.note", deep)).toMatchInlineSnapshot(`
      {
        "body": {
          "error": "bin payload for blobs.note: nested deeper than 32 levels",
        },
        "status": 400,
      }
    `);
    const client = await rawClient(server.address.port);
    client.socket.write(`GET http://[/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    const raw = await client.waitFor("}");
    client.socket.destroy();
    expect({ status: statusLines(raw), body: bodyOf(raw) }).toMatchInlineSnapshot(`
      {
        "body": {
          "error": "the request target is not a valid URL: "http://[/v1/status"",
        },
        "status": [
          "HTTP/1.1 400 Bad Request",
        ],
      }
    `);
    // An escaped backslash before "u0000" is text, not a NUL; 32 levels of nesting are fine.
    expect((await post("/v1/bin/blobs.note", '{"note":"a\\\\u0000b"}')).status).toBe(201);
    expect((await post("/v1/bin/blobs.note", `{"note":${"[".repeat(31)}${"]".repeat(31)}}`)).status).toBe(201);
    expect(await binCount()).toBe(before + 2);
  });
});

describe("probes: GET /healthz and GET /readyz", () => {
  const withProbes = (overrides: Partial<NonNullable<PurgerConfig["http"]>> = {}): PurgerConfig => ({
    ...config,
    http: { ...config.http!, probesWithoutToken: true, ...overrides },
  });
  const get = async (url: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, { headers });
    return { status: response.status, body: (await response.json()) as unknown };
  };
  const latest = async () => (await schemaVersion(db.pool)).latest;

  it("need the token like every path unless http.probesWithoutToken is set", async () => {
    expect((await get(`${base}/healthz`)).status).toBe(401);
    expect((await get(`${base}/readyz`)).status).toBe(401);
    expect(await get(`${base}/healthz`, auth())).toEqual({ status: 200, body: { ok: true } });
    const version = await latest();
    expect(await get(`${base}/readyz`, auth())).toEqual({ status: 200, body: { ok: true, schema: { version, latest: version } } });
  });

  it("with http.probesWithoutToken: true, answer without a token; every other path still requires it", async () => {
    const open = await startAdminServer({ config: withProbes(), pool: db.pool, log: silentLogger });
    const url = `http://127.0.0.1:${open.address.port}`;
    try {
      expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: { ok: true } });
      expect((await get(`${url}/readyz`)).body).toMatchObject({ ok: true });
      expect((await fetch(`${url}/healthz`, { method: "HEAD" })).status).toBe(200);
      const before = await binCount();
      for (const path of ["/v1/status", "/metrics", "/healthz/", "/readyz/../v1/status"]) {
        expect((await fetch(`${url}${path}`)).status, path).toBe(401);
      }
      expect((await fetch(`${url}/v1/bin/blobs.prefix`, { method: "POST", body: '{"prefix":"a/"}' })).status).toBe(401);
      expect((await fetch(`${url}/healthz`, { method: "POST", body: "{}" })).status).toBe(401);
      expect(await binCount()).toBe(before);
      expect((await fetch(`${url}/v1/status`, { headers: auth() })).status).toBe(200);
      // Without a token nothing is read for a client: a probe with a body is refused and the connection closed.
      const client = await rawClient(open.address.port);
      client.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
      const raw = await client.closed;
      expect({ status: statusLines(raw), body: bodyOf(raw) }).toEqual({
        status: ["HTTP/1.1 400 Bad Request"],
        body: { error: "a probe takes no body" },
      });
    } finally {
      await open.close();
    }
  });

  it("/readyz answers 503 with the reason while purger's migrations are not applied, or are newer than this purger", async () => {
    const fresh = await createTestDatabase();
    const server = await startAdminServer({ config: withProbes(), pool: fresh.pool, log: silentLogger });
    const url = `http://127.0.0.1:${server.address.port}`;
    try {
      const version = await latest();
      expect(await get(`${url}/readyz`)).toEqual({
        status: 503,
        body: {
          ok: false,
          reason: `purger's schema in the database is at version 0, this purger expects ${version}: its migrations are not applied (purger applies them when it starts)`,
          schema: { version: 0, latest: version },
        },
      });
      expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: { ok: true } });
      await migrate(fresh.pool, { workerSchema: config.worker.schema, kinds: [] });
      expect((await get(`${url}/readyz`)).status).toBe(200);
      await fresh.pool.query("INSERT INTO purger.migrations (version, name) VALUES ($1, 'from-a-newer-release')", [version + 1]);
      expect(await get(`${url}/readyz`)).toEqual({
        status: 503,
        body: {
          ok: false,
          reason: `purger's schema in the database is at version ${version + 1}, newer than this purger knows (${version}): a newer release of purger upgraded it`,
          schema: { version: version + 1, latest: version },
        },
      });
    } finally {
      await server.close();
      await fresh.drop();
    }
  });

  it("/readyz answers 503 when the database does not answer within the readiness timeout (a lock holds the query), then 200 again", async () => {
    const server = await startAdminServer({ config: withProbes(), pool: db.pool, log: silentLogger, limits: { readyTimeoutMs: 300 } });
    const url = `http://127.0.0.1:${server.address.port}`;
    const locker = await db.pool.connect();
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE purger.migrations IN ACCESS EXCLUSIVE MODE");
      expect(await get(`${url}/readyz`)).toEqual({
        status: 503,
        body: { ok: false, reason: "the database did not answer within 300 ms" },
      });
      expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: { ok: true } });
      await locker.query("ROLLBACK");
      expect((await get(`${url}/readyz`)).status).toBe(200);
    } finally {
      await locker.query("ROLLBACK").catch(() => {});
      locker.release();
      await server.close();
    }
  });

  it("/readyz answers 503 when the database is unreachable; /healthz still 200", async () => {
    const closed = await freePort();
    const pool = createPool({ url: `postgres://purger@127.0.0.1:${closed}/purger` });
    const server = await startAdminServer({ config: withProbes(), pool, log: silentLogger });
    const url = `http://127.0.0.1:${server.address.port}`;
    try {
      expect(await get(`${url}/readyz`)).toEqual({
        status: 503,
        body: { ok: false, reason: "the database is unreachable (ECONNREFUSED)" },
      });
      expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: { ok: true } });
    } finally {
      await server.close();
      await pool.end();
    }
  });
});

describe("http.listen in purger run", () => {
  let project: { dir: string; cleanup(): void };
  beforeAll(() => {
    project = tempDir("purger-http-listen-");
    writeFileSync(join(project.dir, "notes.mjs"), NOTES_PLUGIN);
  });
  afterAll(() => project.cleanup());

  it("a port in use is a configuration error naming http.listen where it is written (exit 2), before any run starts", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as AddressInfo).port;
    const dir = join(project.dir, "busy");
    mkdirSync(dir);
    await seedTable(db.pool, "listen_busy", 5, 0);
    const entry = retentionEntry({ id: "busy", table: "listen_busy", schedule: "every 1h", runOnStart: true });
    writeFileSync(
      join(dir, "purger.yaml"),
      `database:\n  url: ${db.url}\nhttp:\n  token: t\n  listen: 127.0.0.1:${port}\nplugins:\n${entry.replace(/^/gm, "  ")}`,
    );
    try {
      const exit = await purger(["run", "--no-tui"], { cwd: dir });
      expect(exit.code).toBe(2);
      expect(exit.stderr).toContain(
        `purger: purger.yaml:5:11 http.listen: 127.0.0.1:${port} is in use (EADDRINUSE)\n` +
          "hint: another process listens there (another purger on this host?): give each its own address, e.g. listen: ${PURGER_HTTP_LISTEN:-127.0.0.1:9464} and PURGER_HTTP_LISTEN=127.0.0.1:9465 for the second\n",
      );
      expect(await runRows(db.pool, "busy")).toEqual([]);
      expect((await idSpan(db.pool, "listen_busy")).count).toBe(5);
    } finally {
      busy.close();
    }
  });

  it("replicas on one host share a purger.yaml and each listen where PURGER_HTTP_LISTEN says", async () => {
    writeFileSync(
      join(project.dir, "purger.yaml"),
      `database:\n  url: ${db.url}\nhttp:\n  listen: \${PURGER_HTTP_LISTEN:-127.0.0.1:9464}\n  token: t\n  probesWithoutToken: true\nplugins:\n  - id: notes\n    use: ./notes.mjs\n`,
    );
    const ports = [await freePort(), await freePort()];
    const replicas = ports.map((port) =>
      spawnPurger(["run", "--no-tui"], { cwd: project.dir, env: { PURGER_HTTP_LISTEN: `127.0.0.1:${port}` } }),
    );
    try {
      for (const [index, replica] of replicas.entries()) {
        const line = await replica.waitForLog((l) => l.event === "http:listen");
        expect(line["port"]).toBe(ports[index]);
        expect((await fetch(`http://127.0.0.1:${ports[index]}/healthz`)).status).toBe(200);
        await replica.waitForLog((l) => l.event === "worker:start");
      }
      for (const replica of replicas) replica.kill("SIGTERM");
      for (const replica of replicas) expect((await replica.exited).code).toBe(0);
    } finally {
      for (const replica of replicas) await replica.stop();
    }
  });
});

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
