/**
 * An endpoint that accepts connections and never answers (a TCP server in
 * the test, and an HTTP server that answers only HeadBucket): every S3
 * request is aborted after `requestTimeout` and retried, the bin item fails
 * visibly and is retried by the bin, doctor reports the endpoint — nothing
 * hangs.
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkEntry, PurgerEventEmitter } from "@purger/core/host";
import { createTestDatabase, runBin, testEntry, type TestDatabase } from "@purger/core/testing";
import blob from "../src/index.js";
import { blobOptions } from "./fixtures.js";

let db: TestDatabase;
let silent: Server;
let headOnly: HttpServer;
const sockets = new Set<Socket>();
let silentEndpoint: string;
let headOnlyEndpoint: string;

beforeAll(async () => {
  db = await createTestDatabase("blob-timeout");
  // Accepts every connection, reads what comes, never writes a byte.
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on("data", () => undefined);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentEndpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  // Answers HeadBucket (so `prepare` succeeds), then never answers an object request.
  headOnly = createHttpServer((req, res) => {
    if (req.method === "HEAD" && /^\/media\/?$/.test(req.url ?? "")) {
      res.writeHead(200);
      res.end();
    }
  });
  await new Promise<void>((resolve) => headOnly.listen(0, "127.0.0.1", resolve));
  headOnlyEndpoint = `http://127.0.0.1:${(headOnly.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  headOnly?.closeAllConnections();
  await Promise.all([db?.drop(), new Promise((resolve) => silent?.close(resolve)), new Promise((resolve) => headOnly?.close(resolve))]);
});

describe("an endpoint that never answers (a TCP server in the test)", () => {
  it("fails the bin item at prepare with a message naming the endpoint; the bin retries it; nothing hangs", async () => {
    const events = new PurgerEventEmitter();
    const failures: { attempt: number; final: boolean }[] = [];
    events.on("bin:item:fail", (e) => failures.push({ attempt: e.attempt, final: e.final }));
    const [item] = await runBin(blob, {
      pool: db.pool,
      id: "silent",
      options: blobOptions(silentEndpoint, "media", { requestTimeout: "200ms" }),
      items: [{ handler: "object", payload: { key: "a/b.txt" } }],
      maxAttempts: 2,
      events,
      waitMs: 60_000,
    });
    expect(item).toMatchObject({ status: "failed", attempts: 2 });
    expect(item!.lastError).toBe(
      `bucket s3://media at ${silentEndpoint}: no answer from the endpoint within 200 ms (HeadBucket, 3 attempts)`,
    );
    expect(failures).toEqual([
      { attempt: 1, final: false },
      { attempt: 2, final: true },
    ]);
  }, 90_000);

  it("doctor gives up with an error naming the endpoint", async () => {
    const entry = testEntry(blob, {
      pool: db.pool,
      id: "silent",
      options: blobOptions(silentEndpoint, "media", { requestTimeout: "200ms" }),
    });
    const diagnostics = await checkEntry({ pool: db.pool, entry, configDir: process.cwd() });
    expect(diagnostics).toEqual([
      {
        level: "error",
        message: `bucket s3://media at ${silentEndpoint}: no answer from the endpoint within 200 ms (HeadBucket, 3 attempts)`,
        hint: "check `endpoint` (host, port, http or https) and that the server is up; raise `requestTimeout` for a slow server",
      },
    ]);
  }, 60_000);

  it("aborts an object request that never gets an answer, fails the item visibly and retries it", async () => {
    const events = new PurgerEventEmitter();
    const failures: boolean[] = [];
    events.on("bin:item:fail", (e) => failures.push(e.final));
    const [item] = await runBin(blob, {
      pool: db.pool,
      id: "hanging",
      options: blobOptions(headOnlyEndpoint, "media", { requestTimeout: "100ms", versions: false }),
      items: [{ handler: "object", payload: { key: "a/b.txt" } }],
      maxAttempts: 2,
      events,
      waitMs: 80_000,
    });
    expect(item).toMatchObject({ status: "failed", attempts: 2 });
    expect(item!.lastError).toBe(`HeadObject: no answer from ${headOnlyEndpoint} within 100 ms`);
    expect(failures).toEqual([false, true]);
  }, 90_000);
});
