/**
 * The bin when several workers disagree: a process wrongly declared dead, a
 * lost item lock, a worker whose config lacks a kind, a bin flood beside a
 * scheduled entry, and the heartbeat's judgement of which processes are dead.
 * Real PostgreSQL, real workers; the handlers defined here write their effect
 * into a table, tagged with the worker (pool) that ran them.
 */
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import pg from "pg";
import {
  binDepth,
  binKinds,
  definePlugin,
  defineSchema,
  enqueue,
  migrate,
  startWorker,
  type EntryConfig,
  type PurgerConfig,
  type PurgerWorker,
} from "../src/host.js";
import { createTestDatabase, testEntry, type TestDatabase } from "../src/testing.js";

const poolNames = new WeakMap<object, string>();
/** Handlers of `hold` in the worker named here wait until the gate opens. */
const gates = new Map<string, { promise: Promise<void>; open(): void }>();

function gate(name: string): () => void {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  gates.set(name, { promise, open });
  return open;
}

const effects = definePlugin<Record<string, never>>({
  name: "test-bin-workers",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", additionalProperties: false }),
  bin: {
    hold: {
      schema: defineSchema({ type: "object", properties: { key: { type: "string" } }, required: ["key"], additionalProperties: false }),
      async handle(ctx, payload: { key: string }) {
        const process = poolNames.get(ctx.pool) ?? "main";
        await ctx.pool.query("INSERT INTO effects (key, process) VALUES ($1, $2)", [payload.key, process]);
        await gates.get(process)?.promise;
        return { processed: process === "A" ? 111 : 222 };
      },
    },
    sleepy: {
      schema: defineSchema({ type: "object", properties: { ms: { type: "integer" } }, required: ["ms"], additionalProperties: false }),
      async handle(ctx, payload: { ms: number }) {
        await sleep(payload.ms);
        return { processed: 1 };
      },
    },
  },
});

/** A second plugin, for the kind only a newer config has. */
const newer = definePlugin<Record<string, never>>({
  name: "test-bin-newer",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", additionalProperties: false }),
  bin: {
    mark: {
      schema: defineSchema({ type: "object", properties: { key: { type: "string" } }, required: ["key"], additionalProperties: false }),
      async handle(ctx, payload: { key: string }) {
        await ctx.pool.query("INSERT INTO effects (key, process) VALUES ($1, $2)", [payload.key, poolNames.get(ctx.pool) ?? "main"]);
        return { processed: 1 };
      },
    },
  },
});

/** A scheduled entry whose every run notes how many bin items were pending when it ran. */
const clock = definePlugin<Record<string, never>>({
  name: "test-clock",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", additionalProperties: false }),
  async batch(ctx) {
    await ctx.client.query("INSERT INTO ticks (pending) SELECT count(*) FROM purger.bin WHERE status = 'pending'");
    return { processed: 0, cursor: null, done: true };
  },
});

let db: TestDatabase;
let entry: EntryConfig;
let newEntry: EntryConfig;
const extraPools: pg.Pool[] = [];

function config(entries: EntryConfig[], concurrency = 1): PurgerConfig {
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

function namedPool(name: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: db.url, max: 8 });
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  poolNames.set(pool, name);
  extraPools.push(pool);
  return pool;
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

async function effectRows(): Promise<{ key: string; process: string }[]> {
  const { rows } = await db.pool.query<{ key: string; process: string }>("SELECT key, process FROM effects ORDER BY at");
  return rows;
}

async function item(id: string) {
  const { rows } = await db.pool.query<{
    status: string;
    attempts: number;
    processed: number;
    last_error: string | null;
    claimed_by: string | null;
  }>("SELECT status, attempts, processed, last_error, claimed_by FROM purger.bin WHERE id = $1", [id]);
  return rows[0]!;
}

/** Jobs of an item that wait for a later time (a re-check or a retry), not taken by anyone. */
async function laterJobs(id: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM purger_worker._private_jobs WHERE payload->>'item' = $1 AND locked_at IS NULL AND run_at > now()`,
    [id],
  );
  return rows[0]!.n;
}

beforeAll(async () => {
  db = await createTestDatabase("bin_workers");
  entry = testEntry(effects, { pool: db.pool, id: "t", options: {} });
  newEntry = testEntry(newer, { pool: db.pool, id: "fresh", options: {} });
  // Both configs' kinds are registered, as the newer config's first command would do.
  await migrate(db.pool, {
    workerSchema: "purger_worker",
    kinds: binKinds([entry, newEntry]).map((k) => ({ kind: k.kind, entry: k.entry.id, handler: k.handlerName })),
  });
});

afterAll(async () => {
  await Promise.all(extraPools.map((p) => p.end()));
  await db?.drop();
});

beforeEach(async () => {
  gates.clear();
  await db.pool.query(`
    DROP TABLE IF EXISTS effects, ticks;
    CREATE TABLE effects (key text NOT NULL, process text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE TABLE ticks (pending int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
    DELETE FROM purger.bin;
    DELETE FROM purger.processes;
    DELETE FROM purger_worker._private_jobs;
  `);
});

describe("one handler per item", () => {
  it("a process wrongly declared dead (its jobs force-unlocked) keeps its item: the other worker does not handle it again", async () => {
    const openA = gate("A");
    const workers: PurgerWorker[] = [];
    try {
      const a = await startWorker({ config: config([entry]), pool: namedPool("A") });
      workers.push(a);
      const id = await enqueue(db.pool, "t.hold", { key: "k1" });
      await waitFor("A handling the item", async () => (await effectRows()).length === 1);
      const b = await startWorker({ config: config([entry]), pool: namedPool("B") });
      workers.push(b);
      // What the heartbeat does to a process it takes for dead.
      const { rows } = await db.pool.query<{ worker_ids: string[] }>("SELECT worker_ids FROM purger.processes WHERE id = $1", [
        a.processId,
      ]);
      await b.utils.forceUnlockWorkers(rows[0]!.worker_ids);
      // B takes the job (its poll) and either handles the item a second time or leaves it to A for now.
      await waitFor("B taking the job", async () => (await effectRows()).length > 1 || (await laterJobs(id)) > 0);
      openA();
      await waitFor("the item done", async () => (await item(id)).status === "done");
      expect(await effectRows()).toEqual([{ key: "k1", process: "A" }]);
      expect(await item(id)).toMatchObject({ status: "done", attempts: 1, processed: 111, last_error: null });
    } finally {
      gates.get("A")?.open();
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  it("a handler that lost its item lock (its lock session killed) writes nothing over the handler that took the item over", async () => {
    const openA = gate("A");
    const workers: PurgerWorker[] = [];
    try {
      const a = await startWorker({ config: config([entry]), pool: namedPool("A") });
      workers.push(a);
      const id = await enqueue(db.pool, "t.hold", { key: "k2" });
      await waitFor("A handling the item", async () => (await effectRows()).length === 1);
      const b = await startWorker({ config: config([entry]), pool: namedPool("B") });
      workers.push(b);
      const { rowCount } = await db.pool.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'purger-bin-locks'",
      );
      expect(rowCount).toBe(1);
      await waitFor("B handling the item to the end", async () => (await item(id)).status === "done");
      expect(await item(id)).toMatchObject({ status: "done", processed: 222, claimed_by: expect.stringContaining(b.processId) });
      openA();
      // A's handler returns only now (stop waits for it); its status write must find the item claimed by B.
      await a.stop();
      expect(await item(id)).toMatchObject({ status: "done", processed: 222, claimed_by: expect.stringContaining(b.processId) });
      expect((await effectRows()).map((r) => r.process)).toEqual(["A", "B"]);
    } finally {
      gates.get("A")?.open();
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
});

describe("a kind this worker's config lacks (a rolling deploy)", () => {
  it("is left pending without using an attempt, says no running worker knows it, and is handled once a worker that knows it starts", async () => {
    const workers: PurgerWorker[] = [];
    try {
      const old = await startWorker({ config: config([entry]), pool: namedPool("old"), heartbeatMs: 200 });
      workers.push(old);
      const id = await enqueue(db.pool, "fresh.mark", { key: "k3" });
      await waitFor("the item parked", async () => (await item(id)).last_error !== null);
      expect(await item(id)).toEqual({
        status: "pending",
        attempts: 0,
        processed: 0,
        last_error: 'no running worker knows kind "fresh.mark" (its entry is not in their purger.yaml)',
        claimed_by: null,
      });
      expect(await laterJobs(id)).toBe(0);
      expect(await binDepth(db.pool)).toContainEqual({
        kind: "fresh.mark",
        pending: 1,
        failed: 0,
        oldestMs: expect.any(Number),
        parked: 1,
      });
      const current = await startWorker({ config: config([entry, newEntry]), pool: namedPool("new"), heartbeatMs: 200 });
      workers.push(current);
      await waitFor("the item handled", async () => (await item(id)).status === "done");
      expect(await item(id)).toMatchObject({ status: "done", attempts: 1, last_error: null });
      expect(await effectRows()).toEqual([{ key: "k3", process: "new" }]);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  it("while a worker that knows the kind runs, one that does not leaves the item to it, without using an attempt", async () => {
    const workers: PurgerWorker[] = [];
    try {
      // The old worker alone sees the items first; the new one then joins.
      const old = await startWorker({ config: config([entry], 4), pool: namedPool("old"), heartbeatMs: 200 });
      workers.push(old);
      const current = await startWorker({ config: config([entry, newEntry], 1), pool: namedPool("new"), heartbeatMs: 200 });
      workers.push(current);
      const ids: string[] = [];
      for (let i = 0; i < 20; i += 1) ids.push(await enqueue(db.pool, "fresh.mark", { key: `m${String(i).padStart(2, "0")}` }));
      await waitFor("every item handled", async () => {
        const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM purger.bin WHERE status = 'done'");
        return rows[0]!.n === ids.length;
      });
      const { rows } = await db.pool.query("SELECT max(attempts) AS attempts, count(last_error) AS errors FROM purger.bin");
      expect(rows[0]).toEqual({ attempts: 1, errors: 0 });
      expect(new Set((await effectRows()).map((r) => r.process))).toEqual(new Set(["new"]));
      expect((await effectRows()).length).toBe(ids.length);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
});

describe("a bin flood beside a scheduled entry", () => {
  it("an `every 2s` entry keeps its schedule while thousands of slow bin items are pending", async () => {
    const clockEntry: EntryConfig = {
      ...testEntry(clock, { pool: db.pool, id: "clock", options: {} }),
      schedule: { kind: "every", everyMs: 2_000 },
    };
    await db.pool.query("SELECT purger.enqueue('t.sleepy', json_build_object('ms', 10)::jsonb) FROM generate_series(1, 2000)");
    const worker = await startWorker({ config: config([entry, clockEntry], 2), pool: namedPool("flood") });
    try {
      await waitFor(
        "two runs of the entry, or the bin drained",
        async () => {
          const { rows } = await db.pool.query<{ ticks: number; pending: number }>(
            "SELECT (SELECT count(*)::int FROM ticks) AS ticks, (SELECT count(*)::int FROM purger.bin WHERE status = 'pending') AS pending",
          );
          return rows[0]!.ticks >= 2 || rows[0]!.pending === 0;
        },
        90_000,
      );
      const { rows: ticks } = await db.pool.query<{ pending: number }>("SELECT pending FROM ticks ORDER BY at");
      expect(ticks.length).toBeGreaterThanOrEqual(2);
      // Each run happened with most of the flood still waiting.
      for (const tick of ticks) expect(tick.pending).toBeGreaterThan(1000);
    } finally {
      await worker.stop();
    }
  }, 120_000);
});

describe("the heartbeat's judgement of dead processes", () => {
  it("releases a process of this host whose pid is gone only when it shares this pid namespace (not a same-named container)", async () => {
    // A pid that is certainly not running here: a child that has exited.
    const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    const deadPid = Number(child.stdout);
    const worker = await startWorker({ config: config([entry]), pool: namedPool("hb"), heartbeatMs: 100 });
    try {
      const { rows: own } = await db.pool.query<{ pid_namespace: string | null }>(
        "SELECT pid_namespace FROM purger.processes WHERE id = $1",
        [worker.processId],
      );
      await db.pool.query(
        `INSERT INTO purger.processes (id, host, pid, concurrency, worker_ids, pid_namespace)
         VALUES ('other-container', $1, $2, 1, '{pool-other}', 'another-boot/pid:[1]'),
                ('same-namespace', $1, $2, 1, '{pool-same}', $3)`,
        [hostname(), deadPid, own[0]!.pid_namespace],
      );
      await waitFor("the dead process of this namespace released", async () => {
        const { rows } = await db.pool.query("SELECT 1 FROM purger.processes WHERE id = 'same-namespace'");
        return rows.length === 0;
      });
      const beat = async () =>
        (
          await db.pool.query<{ at: Date }>("SELECT heartbeat_at AS at FROM purger.processes WHERE id = $1", [worker.processId])
        ).rows[0]!.at.getTime();
      for (let i = 0; i < 2; i += 1) {
        const before = await beat();
        await waitFor("another beat", async () => (await beat()) > before);
      }
      const { rows } = await db.pool.query("SELECT id FROM purger.processes WHERE id <> $1 ORDER BY id", [worker.processId]);
      expect(rows).toEqual([{ id: "other-container" }]);
      // Linux: the boot id and the pid namespace's inode.
      expect(own[0]!.pid_namespace).toMatch(/^[0-9a-f-]{36}\/pid:\[\d+\]$/);
    } finally {
      await worker.stop();
    }
  });
});
