/**
 * `@purger/core/testing` as a plugin's own repository uses it, against a real
 * PostgreSQL: its entries are the ones purger.yaml would make (the same
 * errors, the same defaults), a stopped worker's run resumes where it
 * stopped, and the stepwise bin worker lets a test act between its steps.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePlugin, defineSchema, isPurgerError, loadConfig, migrate, type AnyPlugin, type PurgerError } from "../src/host.js";
import {
  createTestDatabase,
  getTestServerUrl,
  resumeAfterShutdown,
  runBin,
  runPlugin,
  startBinWorker,
  testEntry,
  type TestDatabase,
} from "../src/testing.js";

let db: TestDatabase;
let dir: string;
/** The same plugin module, as purger.yaml loads it (`use: ./needs-retention.mjs`) and as a test imports it. */
let needsRetention: AnyPlugin;

const PLUGIN_MODULE = `export default {
  name: "test-needs-retention",
  version: "1.0.0",
  usesRetention: true,
  options: { type: "object", properties: { table: { type: "string" }, limit: { type: "integer", default: 7 } }, required: ["table"], additionalProperties: false },
  async batch() { return { processed: 0, done: true }; },
};
`;

beforeAll(async () => {
  db = await createTestDatabase("testing");
  await migrate(db.pool, { workerSchema: "purger_worker" });
  dir = await mkdtemp(path.join(os.tmpdir(), "purger-testing-"));
  await writeFile(path.join(dir, "needs-retention.mjs"), PLUGIN_MODULE);
  needsRetention = ((await import(pathToFileURL(path.join(dir, "needs-retention.mjs")).href)) as { default: AnyPlugin }).default;
});
afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<PurgerError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!isPurgerError(error)) throw new Error(`expected a PurgerError, got ${String(error)}`);
  return error;
}

describe("the testkit resolves its entry as purger.yaml is resolved", () => {
  it("a plugin that needs a retention, run without one: the CLI's error, same code and text", async () => {
    await writeFile(path.join(dir, "purger.yaml"), "plugins:\n  - id: test\n    use: ./needs-retention.mjs\n    options: { table: t }\n");
    const fromFile = await rejection(loadConfig({ configPath: path.join(dir, "purger.yaml"), cwd: dir }));
    const fromTestkit = await rejection(runPlugin(needsRetention, { pool: db.pool, options: { table: "t" } }));

    const problem =
      'plugins[0]: missing required key "retention": plugin test-needs-retention processes items older than a retention window; expected a duration like 30d (or defaults.retention)';
    expect(fromFile.code).toBe("CONFIG");
    expect(fromFile.message).toBe(`purger.yaml:2:5 ${problem}`);
    expect(fromTestkit.code).toBe(fromFile.code);
    expect(fromTestkit.message).toBe(`(config) ${problem}`);
    expect(fromTestkit.hint).toBe(fromFile.hint);
  });

  it("runBin and testEntry refuse it too, and a retention is refused where the plugin uses none", async () => {
    expect(() => testEntry(needsRetention, { pool: db.pool, options: { table: "t" } })).toThrow(/missing required key "retention"/);
    const noRetention = { ...needsRetention, name: "test-no-retention", usesRetention: false };
    await expect(runBin(noRetention, { pool: db.pool, options: { table: "t" }, retention: "7d", items: [] })).rejects.toMatchObject({
      code: "CONFIG",
      message: "(config) plugins[0].retention: this plugin uses no retention (plugin test-no-retention with these options); remove the key",
    });
  });

  it("defaults as the CLI applies them: batch size, slice length, the schema's option defaults", () => {
    const entry = testEntry(needsRetention, { pool: db.pool, options: { table: "t" }, retention: "7d" });
    expect(entry).toMatchObject({
      id: "test",
      use: "test-needs-retention",
      batchSize: 1000,
      timeoutMs: 600_000,
      retentionMs: 7 * 86_400_000,
      jitter: 0,
      guard: null,
      options: { table: "t", limit: 7 },
    });
    expect(testEntry(needsRetention, { pool: db.pool, options: { table: "t" }, retention: "7d", batchSize: "auto" }).batchSize).toEqual({
      auto: true,
      targetMs: 250,
      initial: 1000,
    });
  });

  it("a guard the plugin cannot enforce, or a slice past 4h, is refused as in purger.yaml", () => {
    expect(() => testEntry(needsRetention, { pool: db.pool, options: { table: "t" }, retention: "7d", guard: { maxRows: 5 } })).toThrow(
      "(config) plugins[0].guard.maxRows: plugin test-needs-retention cannot count what qualifies, so this guard cannot be enforced; remove it",
    );
    expect(() => testEntry(needsRetention, { pool: db.pool, options: { table: "t" }, retention: "7d", timeout: "5h" })).toThrow(
      /plugins\[0\]\.timeout: expected less than 4h/,
    );
  });
});

/** Deletes old rows of `table` (keyset on id), and notes each deleted id in `deleted` in the same transaction. */
const sweep = definePlugin<{ table: string }>({
  name: "test-testkit-sweep",
  version: "1.0.0",
  usesRetention: true,
  options: defineSchema({ type: "object", properties: { table: { type: "string" } }, required: ["table"], additionalProperties: false }),
  async batch(ctx) {
    const { rows } = await ctx.client.query<{ id: number }>(
      `WITH b AS (SELECT id FROM ${ctx.options.table} WHERE ts < $1 AND id > $2 ORDER BY id LIMIT $3),
            d AS (DELETE FROM ${ctx.options.table} t USING b WHERE t.id = b.id RETURNING t.id)
       INSERT INTO deleted (tbl, id) SELECT $4, id FROM d RETURNING id`,
      [ctx.cutoff, Number(ctx.cursor ?? 0), ctx.batchSize, ctx.options.table],
    );
    const last = rows.reduce((m, r) => Math.max(m, r.id), Number(ctx.cursor ?? 0));
    return { processed: rows.length, cursor: last, done: rows.length < ctx.batchSize };
  },
});

const NOW = new Date("2026-06-01T00:00:00Z");

/** ids 1…old are 40 days old, the next `recent` ones 2 days old. */
async function seed(table: string, old: number, recent: number): Promise<void> {
  await db.pool.query(`CREATE TABLE IF NOT EXISTS deleted (tbl text NOT NULL, id int NOT NULL)`);
  await db.pool.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id serial PRIMARY KEY, ts timestamptz NOT NULL)`);
  await db.pool.query(
    `INSERT INTO ${table} (ts)
     SELECT $3::timestamptz - CASE WHEN g <= $1::int THEN interval '40 days' ELSE interval '2 days' END FROM generate_series(1, $1::int + $2::int) g`,
    [old, recent, NOW],
  );
}

async function remaining(table: string): Promise<number[]> {
  const { rows } = await db.pool.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`);
  return rows.map((r) => r.id);
}

/** How often each id was deleted. */
async function deletions(table: string): Promise<Record<number, number>> {
  const { rows } = await db.pool.query<{ id: number; n: number }>(
    "SELECT id, count(*)::int AS n FROM deleted WHERE tbl = $1 GROUP BY id ORDER BY id",
    [table],
  );
  return Object.fromEntries(rows.map((r) => [r.id, r.n]));
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("a run stopped as a worker shutdown stops it, then resumed", () => {
  it("stopAfterBatches: 2 leaves the run suspended after 6 rows; the next runPlugin resumes it and deletes each old row once", async () => {
    await seed("t_stop", 10, 3);
    const options = { pool: db.pool, id: "stop", options: { table: "t_stop" }, retention: "30d", batchSize: 3, now: NOW };
    const stopped = await runPlugin(sweep, { ...options, stopAfterBatches: 2 });
    expect(stopped).toMatchObject({ status: "suspended", more: true, processed: 6, batches: 2 });
    expect(await remaining("t_stop")).toEqual(range(7, 13));

    const resumed = await runPlugin(sweep, options);
    expect(resumed).toMatchObject({ status: "succeeded", runId: stopped.runId, processed: 10 });
    expect(await remaining("t_stop")).toEqual(range(11, 13));
    expect(await deletions("t_stop")).toEqual(Object.fromEntries(range(1, 10).map((id) => [id, 1])));
  });

  it("resumeAfterShutdown returns both halves of the run, with one run id", async () => {
    await seed("t_resume", 8, 2);
    const { stopped, resumed } = await resumeAfterShutdown(sweep, {
      pool: db.pool,
      id: "resume",
      options: { table: "t_resume" },
      retention: "30d",
      batchSize: 2,
      now: NOW,
      stopAfterBatches: 3,
    });
    expect(stopped).toMatchObject({ status: "suspended", processed: 6 });
    expect(resumed).toMatchObject({ status: "succeeded", runId: stopped.runId, processed: 8 });
    expect(await remaining("t_resume")).toEqual([9, 10]);
    expect(await deletions("t_resume")).toEqual(Object.fromEntries(range(1, 8).map((id) => [id, 1])));
  });

  it("resumeAfterShutdown says so when the run finished before the stop", async () => {
    await seed("t_short", 2, 0);
    await expect(
      resumeAfterShutdown(sweep, {
        pool: db.pool,
        id: "short",
        options: { table: "t_short" },
        retention: "30d",
        batchSize: 5,
        now: NOW,
        stopAfterBatches: 3,
      }),
    ).rejects.toThrow('entry "short" ended succeeded after 1 batch, before the stop after 3 batches; seed more items or stop earlier');
  });
});

/** Bin handlers that note what they were given. */
const handled: { handler: string; payload: unknown; attempt: number }[] = [];
const marker = definePlugin<{ label: string }>({
  name: "test-testkit-bin",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", properties: { label: { type: "string", default: "x" } }, additionalProperties: false }),
  bin: {
    mark: {
      schema: defineSchema({ type: "object", properties: { n: { type: "integer" } }, required: ["n"], additionalProperties: false }),
      async handle(ctx, payload) {
        handled.push({ handler: `mark:${ctx.options.label}`, payload, attempt: ctx.item.attempt });
        return { processed: 1 };
      },
    },
    flaky: {
      schema: defineSchema({ type: "object", additionalProperties: false }),
      async handle(ctx, payload) {
        if (ctx.item.attempt < 2) throw new Error("not yet");
        handled.push({ handler: "flaky", payload, attempt: ctx.item.attempt });
        return { processed: 1 };
      },
    },
  },
});

describe("the stepwise bin worker", () => {
  it("items wait until start(), are handled, settle() returns their rows, stop() ends the worker", async () => {
    handled.length = 0;
    const worker = await startBinWorker(marker, { pool: db.pool, id: "steps", options: { label: "L" } });
    const done: string[] = [];
    worker.events.on("bin:item:done", (e) => done.push(e.itemId));
    const first = await worker.enqueue("mark", { n: 1 });
    const second = await worker.enqueue("mark", { n: 2 });
    const before = await db.pool.query<{ status: string }>("SELECT status FROM purger.bin WHERE id = ANY($1::bigint[])", [[first, second]]);
    expect(before.rows.map((r) => r.status)).toEqual(["pending", "pending"]);
    expect(handled).toEqual([]);

    await worker.start();
    try {
      const items = await worker.settle([first, second]);
      expect(items.map((i) => [i.id, i.kind, i.status, i.attempts, i.processed])).toEqual([
        [first, "steps.mark", "done", 1, 1],
        [second, "steps.mark", "done", 1, 1],
      ]);
    } finally {
      await worker.stop();
    }
    expect(done.sort()).toEqual([first, second].sort());
    // Two at once (concurrency 2): in either order.
    const byN = (h: { payload: unknown }) => (h.payload as { n: number }).n;
    expect(handled.sort((a, b) => byN(a) - byN(b)).map((h) => [h.handler, h.payload])).toEqual([
      ["mark:L", { n: 1 }],
      ["mark:L", { n: 2 }],
    ]);
    await worker.stop();
  });

  it("enqueue validates the payload as `purger enqueue` does, and maxAttempts applies to each item", async () => {
    handled.length = 0;
    const worker = await startBinWorker(marker, { pool: db.pool, id: "retries", options: {}, maxAttempts: 1 });
    await expect(worker.enqueue("mark", { n: "one" })).rejects.toMatchObject({ code: "PAYLOAD" });
    const id = await worker.enqueue("flaky", {});
    await worker.start();
    try {
      const [item] = await worker.settle([id]);
      expect(item).toMatchObject({ status: "failed", attempts: 1, maxAttempts: 1, lastError: "not yet" });
    } finally {
      await worker.stop();
    }
    expect(handled).toEqual([]);
  });
});

describe("without the global setup", () => {
  it("the error names the setup to add", () => {
    const saved = process.env.PURGER_TEST_PG_URL;
    delete process.env.PURGER_TEST_PG_URL;
    try {
      let error: unknown;
      try {
        getTestServerUrl();
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: "DATABASE", message: "PURGER_TEST_PG_URL is not set, so there is no test PostgreSQL" });
      expect((error as PurgerError).hint).toContain('export { default } from "@purger/core/testing/setup"');
      expect((error as PurgerError).hint).toContain("globalSetup");
    } finally {
      process.env.PURGER_TEST_PG_URL = saved;
    }
  });
});
