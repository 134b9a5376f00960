/**
 * The SDK's helpers for what every plugin did by hand: retrying external
 * calls, permanent failures, a concurrency limit. The bin's treatment of a
 * permanent failure goes through the real bin worker.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  definePlugin,
  defineSchema,
  isPermanent,
  limit,
  migrate,
  permanent,
  PurgerError,
  PurgerEventEmitter,
  requestRun,
  retry,
  startWorker,
} from "../src/host.js";
import { createTestDatabase, runBin, runPlugin, testEntry, type TestDatabase } from "../src/testing.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("sdk-helpers");
});
afterAll(async () => {
  await db?.drop();
});

/** A real HTTP server answering each request with the next status of `statuses` (the last one repeats). */
async function statusServer(statuses: number[]): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    const status = statuses[Math.min(hits, statuses.length - 1)]!;
    hits += 1;
    res.writeHead(status).end(String(status));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

class HttpError extends Error {
  constructor(readonly status: number) {
    super(`answered ${status}`);
  }
}

async function get(url: string, signal?: AbortSignal): Promise<string> {
  const response = await fetch(url, signal ? { signal } : {});
  const body = await response.text();
  if (!response.ok) throw new HttpError(response.status);
  return body;
}

describe("retry", () => {
  it("retries a failing call until it succeeds, within its attempts", async () => {
    const server = await statusServer([503, 503, 200]);
    try {
      const seen: number[] = [];
      const body = await retry((attempt) => (seen.push(attempt), get(server.url)), { attempts: 5, baseMs: 1, maxMs: 5 });
      expect(body).toBe("200");
      expect(seen).toEqual([1, 2, 3]);
      expect(server.hits()).toBe(3);
    } finally {
      await server.close();
    }
  });

  it("throws the last attempt's error after `attempts` tries", async () => {
    const server = await statusServer([503]);
    try {
      await expect(retry(() => get(server.url), { attempts: 3, baseMs: 1 })).rejects.toThrow("answered 503");
      expect(server.hits()).toBe(3);
    } finally {
      await server.close();
    }
  });

  it("never retries a permanent failure, nor one `retryable` refuses", async () => {
    const server = await statusServer([404]);
    try {
      const wrapped = retry(
        () =>
          get(server.url).catch((error: unknown) => {
            throw error instanceof HttpError && error.status < 500 ? permanent(error) : error;
          }),
        { attempts: 5, baseMs: 1 },
      );
      await expect(wrapped).rejects.toMatchObject({ code: "PERMANENT", message: "answered 404" });
      expect(server.hits()).toBe(1);
      await expect(
        retry(() => get(server.url), { attempts: 5, baseMs: 1, retryable: (e) => !(e instanceof HttpError && e.status === 404) }),
      ).rejects.toThrow("answered 404");
      expect(server.hits()).toBe(2);
    } finally {
      await server.close();
    }
  });

  it("makes no attempt after the signal aborted, and an abort during the wait ends it with the signal's reason", async () => {
    const server = await statusServer([503]);
    try {
      const controller = new AbortController();
      const pending = retry(() => get(server.url), {
        attempts: 10,
        baseMs: 60_000,
        maxMs: 60_000,
        random: () => 1,
        signal: controller.signal,
        onRetry: () => controller.abort(new Error("shutting down")),
      });
      await expect(pending).rejects.toThrow("shutting down");
      expect(server.hits()).toBe(1);
      await expect(retry(() => get(server.url), { signal: controller.signal })).rejects.toThrow("shutting down");
      expect(server.hits()).toBe(1);
    } finally {
      await server.close();
    }
  });

  it("waits with full jitter, capped at maxMs, and lets delayMs override the wait", async () => {
    const waits: number[] = [];
    let calls = 0;
    await retry(
      async () => {
        calls += 1;
        if (calls < 5) throw new Error("transient");
      },
      { attempts: 5, baseMs: 1, maxMs: 4, random: () => 0.999, onRetry: ({ delayMs }) => waits.push(delayMs) },
    );
    expect(waits).toEqual([1, 2, 4, 4]);
    const overridden: number[] = [];
    calls = 0;
    await retry(
      async () => {
        calls += 1;
        if (calls < 3) throw new Error("transient");
      },
      {
        attempts: 3,
        baseMs: 1,
        random: () => 0,
        delayMs: (_e, _a, backoff) => backoff + 2,
        onRetry: ({ delayMs }) => overridden.push(delayMs),
      },
    );
    expect(overridden).toEqual([2, 2]);
  });
});

describe("permanent failures", () => {
  it("permanent() keeps the cause's message and the cause; isPermanent knows PERMANENT, PAYLOAD and CONFIG", () => {
    const cause = new Error("the CA refused: unknown serial");
    const error = permanent(cause);
    expect(error).toBeInstanceOf(PurgerError);
    expect([error.code, error.message, error.cause]).toEqual(["PERMANENT", "the CA refused: unknown serial", cause]);
    expect(permanent(error)).toBe(error);
    expect(permanent("gone", { hint: "re-enqueue it" })).toMatchObject({ code: "PERMANENT", message: "gone", hint: "re-enqueue it" });
    expect([isPermanent(error), isPermanent(new PurgerError("PAYLOAD", "x")), isPermanent(new PurgerError("CONFIG", "x"))]).toEqual([
      true,
      true,
      true,
    ]);
    expect([isPermanent(cause), isPermanent(new PurgerError("DATABASE", "x"))]).toEqual([false, false]);
  });

  it("a bin handler throwing one fails its item for good at attempt 1; an ordinary error is retried", async () => {
    const plugin = definePlugin<Record<string, never>>({
      name: "test-permanent",
      version: "1.0.0",
      usesRetention: false,
      options: defineSchema({ type: "object", additionalProperties: false }),
      bin: {
        revoke: {
          schema: defineSchema({
            type: "object",
            properties: { serial: { type: "string" } },
            required: ["serial"],
            additionalProperties: false,
          }),
          handle(ctx, payload: { serial: string }) {
            if (payload.serial === "gone") throw permanent(new Error(`the CA does not know serial ${payload.serial}`));
            if (ctx.item.attempt < 2) throw new Error("the CA is busy");
            return Promise.resolve({ processed: 1 });
          },
        },
      },
    });
    const items = await runBin(plugin, {
      pool: db.pool,
      id: "perm",
      options: {},
      items: [
        { handler: "revoke", payload: { serial: "gone" } },
        { handler: "revoke", payload: { serial: "busy" } },
      ],
      maxAttempts: 2,
    });
    expect(items.map((item) => [item.status, item.attempts, item.lastError])).toEqual([
      ["failed", 1, "the CA does not know serial gone"],
      ["done", 2, null],
    ]);
  });
});

describe("a run whose batch throws a permanent failure", () => {
  it("fails without a worker retry: its job is gone, not rescheduled; an ordinary failure's job stays for its retry", async () => {
    const failing = (name: string, error: () => Error) =>
      definePlugin<Record<string, never>>({
        name,
        version: "1.0.0",
        usesRetention: false,
        options: defineSchema({ type: "object", additionalProperties: false }),
        async batch() {
          throw error();
        },
      });
    const refused = testEntry(
      failing("test-refused", () => permanent("the API refused the token: 403")),
      { pool: db.pool, id: "refused", options: {} },
    );
    const flaky = testEntry(
      failing("test-flaky", () => new Error("the API is down: 503")),
      { pool: db.pool, id: "flaky", options: {} },
    );
    await migrate(db.pool, { workerSchema: "purger_worker", kinds: [] });
    const events = new PurgerEventEmitter();
    const finished: string[] = [];
    events.on("run:finish", (e) => finished.push(`${e.entry}:${e.status}:${e.error ?? ""}`));
    const worker = await startWorker({
      config: {
        file: null,
        dir: process.cwd(),
        database: { url: null },
        worker: { concurrency: 2, shutdownTimeoutMs: 5_000, schema: "purger_worker" },
        runs: { keepMs: 30 * 86_400_000 },
        timezone: "UTC",
        http: null,
        entries: [refused, flaky],
      },
      pool: db.pool,
      events,
    });
    // A job that failed stays with its last_error (graphile-worker retries it); one that completed is deleted.
    const jobs = async () =>
      (
        await db.pool.query<{ entry: string; failed: boolean }>(
          `SELECT j.payload->>'entry' AS entry, j.last_error IS NOT NULL AS failed
             FROM purger_worker._private_jobs j JOIN purger_worker._private_tasks t ON t.id = j.task_id
            WHERE t.identifier = 'purger:entry' ORDER BY 1`,
        )
      ).rows;
    try {
      await requestRun(worker.utils, refused);
      await requestRun(worker.utils, flaky);
      for (const deadline = Date.now() + 20_000; ;) {
        const open = await jobs();
        const settled = !open.some((j) => j.entry === "refused" && !j.failed) && open.some((j) => j.entry === "flaky" && j.failed);
        if (settled && finished.length >= 2) break;
        if (Date.now() > deadline) throw new Error(`jobs did not settle: ${JSON.stringify(open)} ${JSON.stringify(finished)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(finished.sort()).toEqual(["flaky:failed:the API is down: 503", "refused:failed:the API refused the token: 403"]);
      expect(await jobs()).toEqual([{ entry: "flaky", failed: true }]);
    } finally {
      await worker.stop();
    }
  });
});

describe("limit", () => {
  it("runs at most n calls at once", async () => {
    const run = limit(2);
    let active = 0;
    let most = 0;
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        run(async () => {
          active += 1;
          most = Math.max(most, active);
          await new Promise((resolve) => setImmediate(resolve));
          active -= 1;
          return n * 10;
        }),
      ),
    );
    expect(results).toEqual([10, 20, 30, 40, 50]);
    expect(most).toBe(2);
  });
});

describe("progress during estimate", () => {
  it("ctx.progress in estimate is forwarded as run:estimate:progress, before run:start", async () => {
    const plugin = definePlugin<Record<string, never>>({
      name: "test-estimate-progress",
      version: "1.0.0",
      usesRetention: false,
      options: defineSchema({ type: "object", additionalProperties: false }),
      async estimate(ctx) {
        // A bucket listed page by page: the count grows, the total is known only at the end.
        ctx.progress?.(1000);
        ctx.progress?.(2000);
        ctx.progress?.(2500, 2500);
        return 2500;
      },
      async batch() {
        return { processed: 0, cursor: null };
      },
    });
    const events = new PurgerEventEmitter();
    const seen: string[] = [];
    events.on("run:estimate:progress", (e) => seen.push(`${e.entry} ${e.done}/${e.total ?? "?"}`));
    events.on("run:start", (e) => seen.push(`start total ${e.total}`));
    const result = await runPlugin(plugin, { pool: db.pool, id: "listing", options: {}, events });
    expect(result.status).toBe("succeeded");
    expect(seen).toEqual(["listing 1000/?", "listing 2000/?", "listing 2500/2500", "start total 2500"]);
  });
});
