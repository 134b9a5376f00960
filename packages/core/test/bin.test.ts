/**
 * The bin against a real PostgreSQL and real workers, with a small plugin
 * defined here (its handlers write their effect into a table), so these tests
 * check the bin itself: transactional enqueue, validation, hostile payloads,
 * retries with backoff, the failed state, retry/drop, and R2 (several worker
 * processes, every item handled exactly once).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import pg from "pg";
import {
  binDepth,
  binKinds,
  definePlugin,
  defineSchema,
  dropBinItems,
  enqueue,
  listBinItems,
  migrate,
  PurgerEventEmitter,
  retryBinItems,
  startWorker,
  type EntryConfig,
  type PurgerConfig,
  type PurgerWorker,
} from "../src/host.js";
import { createTestDatabase, testEntry, type TestDatabase } from "../src/testing.js";

/** Which process (pool) handled an item: each worker of the R2 test has its own pool. */
const poolNames = new WeakMap<object, string>();

const effects = definePlugin<{ table: string }>({
  name: "test-bin-effects",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", properties: { table: { type: "string" } }, required: ["table"], additionalProperties: false }),
  bin: {
    mark: {
      schema: defineSchema({
        type: "object",
        properties: { key: { type: "string", minLength: 1 }, data: {} },
        required: ["key"],
        additionalProperties: false,
      }),
      async handle(ctx, payload: { key: string; data?: unknown }) {
        await ctx.pool.query("INSERT INTO effects (key, data, process) VALUES ($1, $2, $3)", [
          payload.key,
          payload.data === undefined ? null : JSON.stringify(payload.data),
          poolNames.get(ctx.pool) ?? "main",
        ]);
        return { processed: 1 };
      },
    },
    flaky: {
      schema: defineSchema({ type: "object", properties: { key: { type: "string" } }, required: ["key"], additionalProperties: false }),
      async handle(ctx, payload: { key: string }) {
        const { rows } = await ctx.pool.query<{ broken: boolean }>("SELECT broken FROM switches");
        if (rows[0]?.broken) throw new Error(`downstream is broken (item ${payload.key})`);
        await ctx.pool.query("INSERT INTO effects (key, process) VALUES ($1, 'main')", [payload.key]);
        return { processed: 1 };
      },
    },
  },
});

let db: TestDatabase;
let entry: EntryConfig;
let kinds: ReturnType<typeof binKinds>;

function config(entries: EntryConfig[], concurrency = 4): PurgerConfig {
  return {
    file: null,
    dir: process.cwd(),
    database: { url: null },
    worker: { concurrency, shutdownTimeoutMs: 5_000, schema: "purger_worker" },
    runs: { keepMs: 30 * 86_400_000 },
    timezone: "UTC",
    http: null,
    entries,
  };
}

async function effectKeys(): Promise<string[]> {
  const { rows } = await db.pool.query<{ key: string }>("SELECT key FROM effects ORDER BY key");
  return rows.map((r) => r.key);
}

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

beforeAll(async () => {
  db = await createTestDatabase("bin");
  entry = testEntry(effects, { pool: db.pool, id: "t", options: { table: "effects" } });
  kinds = binKinds([entry]);
  await migrate(db.pool, {
    workerSchema: "purger_worker",
    kinds: kinds.map((k) => ({ kind: k.kind, entry: "t", handler: k.handlerName })),
  });
});

afterAll(async () => {
  await db?.drop();
});

beforeEach(async () => {
  await db.pool.query(`
    DROP TABLE IF EXISTS effects, switches, x;
    CREATE TABLE effects (key text NOT NULL, data jsonb, process text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE TABLE switches (broken boolean NOT NULL);
    INSERT INTO switches VALUES (false);
    CREATE TABLE x (id int);
    DELETE FROM purger.bin;
    DELETE FROM purger_worker._private_jobs;
  `);
});

describe("enqueue", () => {
  it("an item enqueued in a committed transaction is handled; one in a rolled-back transaction never existed", async () => {
    const client = await db.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT purger.enqueue('t.mark', '{\"key\": \"rolled-back\"}'::jsonb)");
      await client.query("ROLLBACK");
      await client.query("BEGIN");
      await client.query("INSERT INTO x VALUES (1)");
      await client.query("SELECT purger.enqueue('t.mark', '{\"key\": \"committed\"}'::jsonb)");
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    const { rows: jobs } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM purger_worker._private_jobs");
    expect(jobs[0]!.n).toBe(1);
    const worker = await startWorker({ config: config([entry]), pool: db.pool });
    try {
      await waitFor("the item", async () => (await listBinItems(db.pool, { status: "done" })).length === 1);
    } finally {
      await worker.stop();
    }
    expect(await effectKeys()).toEqual(["committed"]);
    expect((await listBinItems(db.pool)).map((i) => [i.payload, i.status])).toEqual([[{ key: "committed" }, "done"]]);
  });

  it("an unknown kind is an SQL error naming it and the known kinds (from SQL and from Node)", async () => {
    await expect(db.pool.query("SELECT purger.enqueue('t.nope', '{}'::jsonb)")).rejects.toMatchObject({
      code: "22023",
      message: 'purger.enqueue: unknown kind "t.nope"',
      hint: "known kinds: t.flaky, t.mark",
    });
    await expect(enqueue(db.pool, "blobs.prefix", { prefix: "a/" })).rejects.toMatchObject({
      code: "PAYLOAD",
      message: 'purger.enqueue: unknown kind "blobs.prefix"',
      hint: "known kinds: t.flaky, t.mark",
    });
    await expect(enqueue(db.pool, "t.nope", {}, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: 'unknown bin kind "t.nope"',
      hint: "known kinds: t.mark, t.flaky",
    });
  });

  it("a payload that does not match the handler's schema is a PAYLOAD error with the schema's words", async () => {
    await expect(enqueue(db.pool, "t.mark", { key: 42 }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: /key must be string",
    });
    await expect(enqueue(db.pool, "t.mark", { key: "a", extra: 1 }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: / must NOT have additional properties (extra)",
    });
    await expect(enqueue(db.pool, "t.mark", {}, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: / must have required property 'key'",
    });
    await expect(enqueue(db.pool, "t.mark", [1, 2], kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: expected a JSON object, found an array",
    });
    expect(await listBinItems(db.pool)).toEqual([]);
  });

  it("a payload enqueued from SQL that fails the schema ends failed at its first attempt; the handler never runs", async () => {
    const { rows } = await db.pool.query<{ id: string }>("SELECT purger.enqueue('t.mark', '{\"key\": 7}'::jsonb)::text AS id");
    const worker = await startWorker({ config: config([entry]), pool: db.pool });
    try {
      const [item] = await waitFor("the failure", async () => {
        const failed = await listBinItems(db.pool, { status: "failed" });
        return failed.length > 0 && failed;
      });
      expect(item).toMatchObject({ id: rows[0]!.id, attempts: 1, lastError: "bin payload for t.mark: /key must be string" });
    } finally {
      await worker.stop();
    }
    expect(await effectKeys()).toEqual([]);
  });
});

describe("hostile payloads (R6)", () => {
  it("SQL in values, quotes and unicode are data: stored and handled verbatim, nothing executed", async () => {
    const hostile = ['"; DROP TABLE x; --', "'; DROP TABLE x; --", "Robert'); DROP TABLE x;--", "ünïcødé ✓ 🚀 \u202e", "\\x00 \\' $$ $1"];
    for (const key of hostile) await enqueue(db.pool, "t.mark", { key, data: { nested: key } }, kinds);
    // A hostile kind through SQL is only an unknown kind.
    await expect(db.pool.query("SELECT purger.enqueue($1, '{}'::jsonb)", ["t.mark'); DROP TABLE x; --"])).rejects.toMatchObject({
      code: "22023",
    });
    const worker = await startWorker({ config: config([entry]), pool: db.pool });
    try {
      await waitFor("the items", async () => (await listBinItems(db.pool, { status: "done" })).length === hostile.length);
    } finally {
      await worker.stop();
    }
    expect(await effectKeys()).toEqual([...hostile].sort());
    const { rows } = await db.pool.query<{ data: { nested: string } }>("SELECT data FROM effects ORDER BY key");
    expect(rows.map((r) => r.data.nested)).toEqual([...hostile].sort());
    const { rows: tables } = await db.pool.query("SELECT to_regclass('x') AS x");
    expect(tables[0]).toEqual({ x: "x" });
  });

  it("a NUL character, deep nesting and huge payloads are refused", async () => {
    let deep: unknown = { key: "leaf" };
    for (let i = 0; i < 40; i += 1) deep = { data: deep, key: "d" };
    await expect(enqueue(db.pool, "t.mark", deep, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: nested deeper than 32 levels",
    });
    const huge = { key: "h", data: "x".repeat(70_000) };
    await expect(enqueue(db.pool, "t.mark", huge, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: `bin payload for t.mark: ${JSON.stringify(huge).length} bytes, more than the limit of 65536`,
    });
    // Without `kinds` (a caller that is not purger), PostgreSQL refuses them itself.
    await expect(enqueue(db.pool, "t.mark", huge)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: expect.stringMatching(/^purger\.enqueue\(t\.mark\): the payload is 700\d\d bytes, more than the limit of 65536$/),
    });
    await expect(enqueue(db.pool, "t.mark", { key: "nul\u0000byte" })).rejects.toThrow(/unsupported Unicode escape sequence|\\u0000/);
    expect(await listBinItems(db.pool)).toEqual([]);
  });
});

describe("payloads PostgreSQL cannot store", () => {
  it("nesting thousands deep is refused before JSON.stringify could overflow the stack; NUL and unpaired surrogates name their place", async () => {
    const deep = JSON.parse(`{"key":"d","data":${"[".repeat(30_000)}${"]".repeat(30_000)}}`) as unknown;
    await expect(enqueue(db.pool, "t.mark", deep, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: nested deeper than 32 levels",
    });
    await expect(enqueue(db.pool, "t.mark", { key: "nul", data: { list: ["ok", "a\u0000b"] } }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: /data/list/1 holds \\u0000, which PostgreSQL cannot store in JSON",
    });
    await expect(enqueue(db.pool, "t.mark", { key: "nul", data: { "a/\u0000": 1 } }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: the key /data/a~1\\u0000 holds \\u0000, which PostgreSQL cannot store in JSON",
    });
    await expect(enqueue(db.pool, "t.mark", { key: "\ud800" }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for t.mark: /key holds an unpaired UTF-16 surrogate, which PostgreSQL cannot store in JSON",
    });
    // A surrogate pair (an emoji) is fine.
    await enqueue(db.pool, "t.mark", { key: "\ud83d\ude80" }, kinds);
    expect((await listBinItems(db.pool)).map((item) => item.payload["key"])).toEqual(["🚀"]);
  });
});

describe("failures", () => {
  it("a failing item is retried with exponential backoff, then ends failed and visible in binDepth; retry puts it back, drop gives it up", async () => {
    await db.pool.query("UPDATE switches SET broken = true");
    const events = new PurgerEventEmitter();
    const starts: number[] = [];
    events.on("bin:item:start", () => starts.push(Date.now()));
    const id = await enqueue(db.pool, "t.flaky", { key: "f1" }, kinds);
    const other = await enqueue(db.pool, "t.flaky", { key: "f2" }, kinds);
    await db.pool.query("UPDATE purger.bin SET max_attempts = 3 WHERE id = ANY($1::bigint[])", [[id, other]]);
    const worker = await startWorker({ config: config([entry], 1), pool: db.pool, events });
    let workerStopped = false;
    try {
      const failed = await waitFor("both failures", async () => {
        const items = await listBinItems(db.pool, { status: "failed" });
        return items.length === 2 && items;
      });
      expect(failed.map((i) => [i.id, i.attempts, i.lastError])).toEqual([
        [id, 3, "downstream is broken (item f1)"],
        [other, 3, "downstream is broken (item f2)"],
      ]);
      expect(await binDepth(db.pool)).toContainEqual({ kind: "t.flaky", pending: 0, failed: 2, oldestMs: null });
      // Backoff: 1 s then 2 s (±25 %) between attempts of an item; two items interleave, so look at the spans.
      expect(starts).toHaveLength(6);
      expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(750 + 1500);

      await db.pool.query("UPDATE switches SET broken = false");
      expect(await retryBinItems(db.pool, "purger_worker", [id])).toBe(1);
      await waitFor("the retried item", async () => (await listBinItems(db.pool, { status: "done" })).length === 1);
      expect(await effectKeys()).toEqual(["f1"]);
      expect(await dropBinItems(db.pool)).toBe(1);
      await worker.stop();
      workerStopped = true;
      expect((await listBinItems(db.pool, { limit: 10 })).map((i) => [i.id, i.status])).toEqual([
        [id, "done"],
        [other, "dropped"],
      ]);
      expect(await binDepth(db.pool)).toContainEqual({ kind: "t.flaky", pending: 0, failed: 0, oldestMs: null });
    } finally {
      if (!workerStopped) await worker.stop();
    }
  }, 60_000);
});

describe("R2: several worker processes", () => {
  it("1 000 items enqueued concurrently are each handled exactly once, by every process", async () => {
    const processes = ["p1", "p2", "p3"];
    const pools = processes.map((name) => {
      const pool = new pg.Pool({ connectionString: db.url, max: 8 });
      pool.on("error", () => {});
      poolNames.set(pool, name);
      return pool;
    });
    const workers: PurgerWorker[] = [];
    try {
      for (const pool of pools) workers.push(await startWorker({ config: config([entry], 4), pool }));
      const keys = Array.from({ length: 1000 }, (_, i) => `item-${String(i).padStart(4, "0")}`);
      // Many writers at once, some in transactions with their own work (as a web server would).
      await Promise.all(
        Array.from({ length: 10 }, async (_, writer) => {
          const client = await db.pool.connect();
          try {
            for (let i = writer; i < keys.length; i += 10) {
              if (i % 3 === 0) {
                await client.query("BEGIN");
                await client.query("INSERT INTO x VALUES ($1)", [i]);
                await enqueue(client, "t.mark", { key: keys[i] }, kinds);
                await client.query("COMMIT");
              } else {
                await enqueue(client, "t.mark", { key: keys[i] }, kinds);
              }
            }
          } finally {
            client.release();
          }
        }),
      );
      await waitFor(
        "every item",
        async () => {
          const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM purger.bin WHERE status = 'pending'");
          return rows[0]!.n === 0;
        },
        120_000,
      );
      const { rows } = await db.pool.query<{ total: number; distinct: number }>(
        "SELECT count(*)::int AS total, count(DISTINCT key)::int AS distinct FROM effects",
      );
      expect(rows[0]).toEqual({ total: 1000, distinct: 1000 });
      expect(await effectKeys()).toEqual(keys);
      const { rows: byProcess } = await db.pool.query<{ process: string; n: number }>(
        "SELECT process, count(*)::int AS n FROM effects GROUP BY process ORDER BY process",
      );
      expect(byProcess.map((r) => r.process)).toEqual(processes);
      const { rows: statuses } = await db.pool.query(
        "SELECT status, count(*)::int AS n, max(attempts) AS attempts FROM purger.bin GROUP BY status",
      );
      expect(statuses).toEqual([{ status: "done", n: 1000, attempts: 1 }]);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await Promise.all(pools.map((p) => p.end()));
    }
  }, 180_000);
});
