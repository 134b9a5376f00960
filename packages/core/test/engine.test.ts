/**
 * The run loop and the worker against a real PostgreSQL, with a small
 * plugin defined here (a keyset delete on `(ts, id)`), so these tests check
 * the engine, not a first-party plugin.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import {
  definePlugin,
  defineSchema,
  PurgerError,
  PurgerEventEmitter,
  enqueue,
  startWorker,
  binDepth,
  listBinItems,
  migrate,
  runEntry,
} from "../src/host.js";
import type { PurgerConfig } from "../src/host.js";
import { createTestDatabase, runPlugin, testEntry } from "../src/testing.js";

interface Options {
  table: string;
  failAfter?: number;
}

/** Deletes rows of `table` with `ts < cutoff`, `batchSize` at a time, keyset on id; records concurrent batches. */
let active = 0;
let maxActive = 0;
const sweep = definePlugin<Options>({
  name: "test-sweep",
  version: "1.0.0",
  usesRetention: true,
  options: defineSchema({
    type: "object",
    properties: { table: { type: "string" }, failAfter: { type: "integer" } },
    required: ["table"],
    additionalProperties: false,
  }),
  async batch(ctx) {
    active += 1;
    maxActive = Math.max(maxActive, active);
    try {
      if (ctx.options.failAfter !== undefined && Number(ctx.cursor ?? 0) >= ctx.options.failAfter) {
        throw new Error(`injected failure after id ${ctx.options.failAfter}`);
      }
      const { rows } = await ctx.client.query<{ id: number }>(
        `WITH b AS (SELECT id FROM ${ctx.options.table} WHERE ts < $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
         DELETE FROM ${ctx.options.table} t USING b WHERE t.id = b.id RETURNING t.id`,
        [ctx.cutoff, Number(ctx.cursor ?? 0), ctx.batchSize],
      );
      await sleep(2);
      const last = rows.reduce((m, r) => Math.max(m, r.id), Number(ctx.cursor ?? 0));
      return { processed: rows.length, cursor: last, done: rows.length < ctx.batchSize, sample: rows.slice(0, 3).map((r) => String(r.id)) };
    } finally {
      active -= 1;
    }
  },
  async estimate(ctx) {
    const { rows } = await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ctx.options.table} WHERE ts < $1`, [ctx.cutoff]);
    return rows[0]!.n;
  },
  async count(ctx, limit) {
    const { rows } = await ctx.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${ctx.options.table} WHERE ts < $1 LIMIT $2) s`,
      [ctx.cutoff, limit],
    );
    return rows[0]!.n;
  },
  async countAll(ctx) {
    const { rows } = await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ctx.options.table}`);
    return rows[0]!.n;
  },
  bin: {
    row: {
      schema: defineSchema({ type: "object", properties: { id: { type: "integer" } }, required: ["id"], additionalProperties: false }),
      async handle(ctx, payload: { id: number }) {
        if (payload.id < 0) throw new Error("negative ids always fail");
        const { rowCount } = await ctx.pool.query(`DELETE FROM ${ctx.options.table} WHERE id = $1`, [payload.id]);
        return { processed: rowCount ?? 0 };
      },
    },
  },
});

let db: Awaited<ReturnType<typeof createTestDatabase>>;
const NOW = new Date("2026-06-01T00:00:00Z");

async function seed(pool: pg.Pool, table: string, old: number, fresh: number): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id serial PRIMARY KEY, ts timestamptz NOT NULL)`);
  await pool.query(
    `INSERT INTO ${table} (ts) SELECT CASE WHEN g <= $1::int THEN $3::timestamptz - interval '10 days' ELSE $3::timestamptz - interval '1 hour' END
       FROM generate_series(1, $1::int + $2::int) g`,
    [old, fresh, NOW],
  );
}

async function ids(pool: pg.Pool, table: string): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`);
  return rows.map((r) => r.id);
}

/** Poll until `condition` holds (fails the test after `timeoutMs`): event timing depends on a busy machine's scheduling. */
async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, { workerSchema: "purger_worker" });
});
afterAll(async () => {
  await db?.drop();
});

describe("runEntry", () => {
  it("deletes exactly the rows past the cutoff, in batches, and records the run", async () => {
    await seed(db.pool, "t_basic", 25, 5);
    const events = new PurgerEventEmitter();
    const seen: number[] = [];
    events.on("run:batch:done", (e) => seen.push(e.done));
    const result = await runPlugin(sweep, {
      pool: db.pool,
      options: { table: "t_basic" },
      retention: "7d",
      batchSize: 10,
      now: NOW,
      events,
    });
    expect(result).toMatchObject({ status: "succeeded", processed: 25, batches: 3, dryRun: false });
    expect(seen).toEqual([10, 20, 25]);
    expect(await ids(db.pool, "t_basic")).toEqual(range(26, 30));
    const { rows } = await db.pool.query("SELECT status, processed, batches, checkpoint, total, cutoff FROM purger.runs WHERE id = $1", [
      result.runId,
    ]);
    expect(rows[0]).toMatchObject({ status: "succeeded", processed: 25, batches: 3, checkpoint: 25, total: 25 });
    expect(rows[0].cutoff.toISOString()).toBe("2026-05-25T00:00:00.000Z");
  });

  it("dry run counts and samples what would go, and changes nothing", async () => {
    await seed(db.pool, "t_dry", 12, 3);
    const result = await runPlugin(sweep, {
      pool: db.pool,
      options: { table: "t_dry" },
      retention: "7d",
      batchSize: 5,
      now: NOW,
      dryRun: true,
    });
    expect(result).toMatchObject({ status: "succeeded", processed: 12, dryRun: true });
    expect(result.sample?.slice(0, 3)).toEqual(["1", "2", "3"]);
    expect(await ids(db.pool, "t_dry")).toEqual(range(1, 15));
    const { rows } = await db.pool.query("SELECT dry_run, processed FROM purger.runs WHERE id = $1", [result.runId]);
    expect(rows[0]).toEqual({ dry_run: true, processed: 12 });
  });

  it("guard.maxRows stops before the first change, says which guard and the figures (R8)", async () => {
    await seed(db.pool, "t_guard", 50, 10);
    const result = await runPlugin(sweep, {
      pool: db.pool,
      options: { table: "t_guard" },
      retention: "7d",
      now: NOW,
      guard: { maxRows: 20 },
    });
    expect(result.status).toBe("guarded");
    expect(result.guard).toBe("guard.maxRows: more than 20 items qualify (counted 21, stopped counting at 21); nothing was changed");
    expect(await ids(db.pool, "t_guard")).toEqual(range(1, 60));
  });

  it("guard.maxFraction compares with the exact row count", async () => {
    await seed(db.pool, "t_fraction", 50, 50);
    const guarded = await runPlugin(sweep, {
      pool: db.pool,
      options: { table: "t_fraction" },
      retention: "7d",
      now: NOW,
      guard: { maxFraction: 0.4 },
    });
    expect(guarded.status).toBe("guarded");
    expect(guarded.guard).toMatch(/^guard\.maxFraction: at least 41 of 100 items \(41\.0%\) qualify, more than the limit of 40\.0%/);
    expect((await ids(db.pool, "t_fraction")).length).toBe(100);
    const allowed = await runPlugin(sweep, {
      pool: db.pool,
      options: { table: "t_fraction" },
      retention: "7d",
      now: NOW,
      guard: { maxFraction: 0.5 },
    });
    expect(allowed).toMatchObject({ status: "succeeded", processed: 50 });
  });

  it("runs slices back to back when a slice's timeout passes, and finishes the backlog", async () => {
    await seed(db.pool, "t_slices", 40, 0);
    const result = await runPlugin(sweep, {
      pool: db.pool,
      options: { table: "t_slices" },
      retention: "1d",
      batchSize: 4,
      timeout: "1ms",
      now: NOW,
    });
    expect(result).toMatchObject({ status: "succeeded", processed: 40 });
    const { rows } = await db.pool.query("SELECT slices FROM purger.runs WHERE id = $1", [result.runId]);
    expect(rows[0].slices).toBeGreaterThan(1);
    expect(await ids(db.pool, "t_slices")).toEqual([]);
  });

  it("a sliced run stops at its timeout with its checkpoint, and the next slice resumes with the same cutoff", async () => {
    await seed(db.pool, "t_resume", 30, 0);
    const entry = testEntry(sweep, {
      pool: db.pool,
      id: "resume",
      options: { table: "t_resume" },
      retention: "1d",
      batchSize: 5,
      timeout: "1ms",
    });
    const first = await runEntry({ pool: db.pool, entry, trigger: "schedule", sliced: true, onLocked: "skip", now: () => NOW });
    expect(first).toMatchObject({ status: "suspended", more: true, processed: 5 });
    const later = new Date(NOW.getTime() + 86_400_000 * 365);
    const second = await runEntry({ pool: db.pool, entry, trigger: "continue", sliced: true, onLocked: "skip", now: () => later });
    expect(second).toMatchObject({ status: "suspended", processed: 10, runId: first.runId });
    const rest = await runEntry({
      pool: db.pool,
      entry: { ...entry, timeoutMs: 60_000 },
      trigger: "continue",
      onLocked: "skip",
      now: () => later,
    });
    expect(rest).toMatchObject({ status: "succeeded", processed: 30, runId: first.runId, cutoff: "2026-05-31T00:00:00.000Z" });
    expect(await ids(db.pool, "t_resume")).toEqual([]);
  });

  it("a failing batch rolls back whole and the run is recorded as failed with the error", async () => {
    await seed(db.pool, "t_fail", 30, 0);
    const result = await runPlugin(sweep, {
      pool: db.pool,
      options: { table: "t_fail", failAfter: 10 },
      retention: "1d",
      batchSize: 10,
      now: NOW,
    });
    expect(result).toMatchObject({ status: "failed", processed: 10, error: "injected failure after id 10" });
    expect(await ids(db.pool, "t_fail")).toEqual(range(11, 30));
    const { rows } = await db.pool.query("SELECT status, error, checkpoint FROM purger.runs WHERE id = $1", [result.runId]);
    expect(rows[0]).toEqual({ status: "failed", error: "injected failure after id 10", checkpoint: 10 });
  });

  it("an entry never runs twice at once: a second caller waits for the lock, or fails with --no-wait", async () => {
    await seed(db.pool, "t_lock", 60, 0);
    maxActive = 0;
    const entry = testEntry(sweep, { pool: db.pool, id: "lock", options: { table: "t_lock" }, retention: "1d", batchSize: 5 });
    const events = new PurgerEventEmitter();
    const waits: string[] = [];
    events.on("run:lock:wait", (e) => waits.push(e.entry));
    // `a` takes the lock and holds it, paused at its first batch boundary, until the other callers have been seen.
    let paused = true;
    const aEvents = new PurgerEventEmitter();
    const holding = new Promise<void>((resolve) => aEvents.on("entry:pause", (e) => e.paused && resolve()));
    const a = runEntry({
      pool: db.pool,
      entry,
      trigger: "manual",
      onLocked: "wait",
      now: () => NOW,
      events: aEvents,
      isPaused: () => paused,
    });
    await holding;
    await expect(runEntry({ pool: db.pool, entry, trigger: "manual", onLocked: "fail", now: () => NOW })).rejects.toThrow(
      /entry "lock" is running in another process/,
    );
    const b = runEntry({ pool: db.pool, entry, trigger: "manual", onLocked: "wait", now: () => NOW, events });
    await until(() => waits.length === 1, 10_000);
    paused = false;
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.processed + rb.processed).toBe(60);
    expect(waits).toEqual(["lock"]);
    expect(maxActive).toBe(1);
  });

  it("a missing target is a PurgerError from prepare, before any run is recorded", async () => {
    const failing = definePlugin<Options>({
      ...sweep,
      async prepare() {
        throw new PurgerError("TARGET", 'table "nope" does not exist');
      },
    });
    await expect(runPlugin(failing, { pool: db.pool, id: "missing", options: { table: "nope" }, retention: "1d" })).rejects.toMatchObject({
      code: "TARGET",
    });
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM purger.runs WHERE entry = 'missing'");
    expect(rows[0].n).toBe(0);
  });
});

function config(entries: PurgerConfig["entries"]): PurgerConfig {
  return {
    file: null,
    dir: process.cwd(),
    database: { url: null },
    worker: { concurrency: 2, shutdownTimeoutMs: 5_000, schema: "purger_worker" },
    runs: { keepMs: 30 * 86_400_000 },
    timezone: "UTC",
    http: null,
    entries,
  };
}

describe("startWorker", () => {
  it("runs `every` entries on schedule while another entry fails on every batch (R9), and drains the bin", async () => {
    await seed(db.pool, "t_every", 0, 0);
    await seed(db.pool, "t_broken", 10, 0);
    await seed(db.pool, "t_bin", 0, 3);
    const good = {
      ...testEntry(sweep, { pool: db.pool, id: "good", options: { table: "t_every" }, retention: "0s" }),
      schedule: { kind: "every" as const, everyMs: 1000 },
    };
    const broken = {
      ...testEntry(sweep, { pool: db.pool, id: "broken", options: { table: "t_broken", failAfter: 0 }, retention: "0s" }),
      schedule: { kind: "every" as const, everyMs: 1000 },
    };
    const binEntry = testEntry(sweep, { pool: db.pool, id: "rows", options: { table: "t_bin" }, retention: "0s" });
    const cfg = config([good, broken, binEntry]);
    await migrate(db.pool, { workerSchema: "purger_worker", kinds: [{ kind: "rows.row", entry: "rows", handler: "row" }] });
    const events = new PurgerEventEmitter();
    const finished: string[] = [];
    events.on("run:finish", (e) => finished.push(`${e.entry}:${e.status}`));
    const binDone: string[] = [];
    events.on("bin:item:done", (e) => binDone.push(e.itemId));
    const worker = await startWorker({ config: cfg, pool: db.pool, events });
    try {
      // Two rows for `good` arrive over time: each tick deletes what qualifies.
      await db.pool.query("INSERT INTO t_every (ts) VALUES (now() - interval '1 minute')");
      const t0 = Date.now();
      const id1 = await enqueue(db.pool, "rows.row", { id: 1 });
      await until(() => binDone.length >= 1, 10_000);
      const latency = Date.now() - t0;
      await until(() => finished.filter((f) => f === "good:succeeded").length >= 1, 15_000);
      await db.pool.query("INSERT INTO t_every (ts) VALUES (now() - interval '1 minute')");
      const before = finished.filter((f) => f === "good:succeeded").length;
      await until(() => finished.filter((f) => f === "good:succeeded").length > before, 15_000);
      await until(() => finished.filter((f) => f === "broken:failed").length >= 2, 15_000);
      expect(await ids(db.pool, "t_every")).toEqual([]);
      expect(await ids(db.pool, "t_broken")).toEqual(range(1, 10));
      expect(binDone).toEqual([id1]);
      // The bin is woken by NOTIFY, not by the 2 s poll (bench/p4-bin-latency.ts measures it properly).
      expect(latency).toBeLessThan(2000);
      expect(await ids(db.pool, "t_bin")).toEqual([2, 3]);
    } finally {
      await worker.stop();
    }
  });

  it("bin: a rolled-back enqueue leaves nothing, an unknown kind is an SQL error, a failing item ends visible as failed", async () => {
    await migrate(db.pool, { workerSchema: "purger_worker", kinds: [{ kind: "rows.row", entry: "rows", handler: "row" }] });
    const client = await db.pool.connect();
    await client.query("BEGIN");
    await client.query("SELECT purger.enqueue('rows.row', '{\"id\": 2}'::jsonb)");
    await client.query("ROLLBACK");
    client.release();
    const before = await listBinItems(db.pool, { kind: "rows.row", status: "pending" });
    expect(before).toEqual([]);
    await expect(db.pool.query("SELECT purger.enqueue('nope.x', '{}'::jsonb)")).rejects.toThrow('purger.enqueue: unknown kind "nope.x"');
    await expect(db.pool.query("SELECT purger.enqueue('rows.row', '[1]'::jsonb)")).rejects.toThrow(
      "the payload must be a JSON object, found array",
    );
    const id = await enqueue(db.pool, "rows.row", { id: -1 });
    await db.pool.query("UPDATE purger.bin SET max_attempts = 2 WHERE id = $1", [id]);
    const binEntry = testEntry(sweep, { pool: db.pool, id: "rows", options: { table: "t_bin" }, retention: "0s" });
    const worker = await startWorker({ config: config([binEntry]), pool: db.pool });
    try {
      const t0 = Date.now();
      let items = await listBinItems(db.pool, { status: "failed" });
      while (items.length === 0 && Date.now() - t0 < 10_000) {
        await sleep(100);
        items = await listBinItems(db.pool, { status: "failed" });
      }
      expect(items).toMatchObject([{ id, attempts: 2, lastError: "negative ids always fail" }]);
      expect(await binDepth(db.pool)).toContainEqual({ kind: "rows.row", pending: 0, failed: 1, oldestMs: null });
    } finally {
      await worker.stop();
    }
  });
});
