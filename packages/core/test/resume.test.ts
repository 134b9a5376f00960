/**
 * Resuming an unfinished run, against a real PostgreSQL: only while the
 * entry's config still matches the run's fingerprint (else the run ends
 * `superseded` and a new one starts under the new config and its guard), never
 * past a guard that was not seen to pass, and timed by the database's clock.
 */
import pg from "pg";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { cancelRun, definePlugin, defineSchema, migrate, PurgerEventEmitter, runEntry } from "../src/host.js";
import type { EntryConfig, RunFinishEvent, RunStartEvent } from "../src/host.js";
import { createTestDatabase, runBin, runPlugin, testEntry } from "../src/testing.js";

interface Options {
  table: string;
}

/** Terminate the run's own session (as a killed process's dies) in the middle of the guard's count. */
let dieInCount = false;

/** Deletes rows of `table` with `ts < cutoff`, keyset on id. */
const sweep = definePlugin<Options>({
  name: "test-resume",
  version: "1.0.0",
  usesRetention: true,
  options: defineSchema({
    type: "object",
    properties: { table: { type: "string" } },
    required: ["table"],
    additionalProperties: false,
  }),
  async batch(ctx) {
    // Longer than the tests' 1 ms slices, so a slice holds exactly one batch however fast the database answers.
    await sleep(3);
    const { rows } = await ctx.client.query<{ id: number }>(
      `WITH b AS (SELECT id FROM ${ctx.options.table} WHERE ts < $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
       DELETE FROM ${ctx.options.table} t USING b WHERE t.id = b.id RETURNING t.id`,
      [ctx.cutoff, Number(ctx.cursor ?? 0), ctx.batchSize],
    );
    const last = rows.reduce((m, r) => Math.max(m, r.id), Number(ctx.cursor ?? 0));
    return { processed: rows.length, cursor: last, done: rows.length < ctx.batchSize };
  },
  async count(ctx, limit) {
    if (dieInCount) {
      await ctx.pool.query(
        `SELECT pg_terminate_backend(l.pid, 10000) FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
    }
    const { rows } = await ctx.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${ctx.options.table} WHERE ts < $1 LIMIT $2) s`,
      [ctx.cutoff, limit],
    );
    return rows[0]!.n;
  },
  bin: {
    probe: {
      schema: defineSchema({ type: "object", additionalProperties: false }),
      async handle(ctx) {
        binStartedAt.push(ctx.startedAt);
        return { processed: 0 };
      },
    },
  },
});

/** What the bin handler saw as its start time. */
const binStartedAt: Date[] = [];

let db: Awaited<ReturnType<typeof createTestDatabase>>;
const NOW = new Date("2026-06-01T00:00:00Z");
const DAY = 86_400_000;

/** ids 1…old are 40 days old, the next `recent` ones 2 days old (relative to `at`, or the database's now()). */
async function seed(table: string, old: number, recent: number, at: Date | null = NOW): Promise<void> {
  await db.pool.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id serial PRIMARY KEY, ts timestamptz NOT NULL)`);
  await db.pool.query(
    `INSERT INTO ${table} (ts)
     SELECT coalesce($3::timestamptz, now()) - CASE WHEN g <= $1::int THEN interval '40 days' ELSE interval '2 days' END
       FROM generate_series(1, $1::int + $2::int) g`,
    [old, recent, at],
  );
}

async function ids(table: string): Promise<number[]> {
  const { rows } = await db.pool.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`);
  return rows.map((r) => r.id);
}

async function runsOf(entry: string): Promise<Array<{ id: string; status: string; processed: number; error: string | null }>> {
  const { rows } = await db.pool.query(
    "SELECT id::text, status, processed::int AS processed, error FROM purger.runs WHERE entry = $1 AND NOT dry_run ORDER BY id",
    [entry],
  );
  return rows;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** One slice of 5 rows under `retention: 1h`, then the run waits, resumable. */
async function suspendedRun(entry: EntryConfig): Promise<string> {
  const first = await runEntry({ pool: db.pool, entry, trigger: "schedule", sliced: true, onLocked: "skip", now: () => NOW });
  expect(first).toMatchObject({ status: "suspended", more: true, processed: 5 });
  return first.runId!;
}

beforeAll(async () => {
  db = await createTestDatabase("resume");
  await migrate(db.pool, { workerSchema: "purger_worker" });
});
afterAll(async () => {
  await db?.drop();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("resuming a run after its config changed", () => {
  it("a run suspended under retention 1h, resumed after the entry moved to 30d with a guard, ends superseded; the new run is guarded", async () => {
    await seed("t_changed", 10, 20);
    const before = testEntry(sweep, {
      pool: db.pool,
      id: "changed",
      options: { table: "t_changed" },
      retention: "1h",
      batchSize: 5,
      timeout: "1ms",
    });
    const oldRunId = await suspendedRun(before);
    expect(await ids("t_changed")).toEqual(range(6, 30));

    const after = testEntry(sweep, {
      pool: db.pool,
      id: "changed",
      options: { table: "t_changed" },
      retention: "30d",
      batchSize: 5,
      guard: { maxRows: 3 },
    });
    const events = new PurgerEventEmitter();
    const finished: RunFinishEvent[] = [];
    const started: RunStartEvent[] = [];
    events.on("run:finish", (e) => finished.push(e));
    events.on("run:start", (e) => started.push(e));
    const later = new Date(NOW.getTime() + 60_000);
    const result = await runEntry({ pool: db.pool, entry: after, trigger: "continue", onLocked: "skip", now: () => later, events });

    const reason = `run ${oldRunId} cannot be resumed under the entry's current config (retention 1h → 30d; guard none → maxRows 3); a new run replaces it`;
    expect(result).toMatchObject({
      status: "guarded",
      cutoff: "2026-05-02T00:01:00.000Z",
      guard: "guard.maxRows: more than 3 items qualify (counted 4, stopped counting at 4); nothing was changed",
      superseded: { runId: oldRunId, reason },
    });
    expect(result.runId).not.toBe(oldRunId);
    expect(await ids("t_changed")).toEqual(range(6, 30));
    expect(await runsOf("changed")).toEqual([
      { id: oldRunId, status: "superseded", processed: 5, error: reason },
      { id: result.runId, status: "guarded", processed: 0, error: null },
    ]);
    expect(finished.map((e) => [e.runId, e.status])).toEqual([
      [oldRunId, "superseded"],
      [result.runId, "guarded"],
    ]);
    expect(started).toEqual([]);

    // Under the new window the next run deletes the 40-day-old rows only.
    const allowed = await runEntry({
      pool: db.pool,
      entry: { ...after, guard: { maxRows: 100 } },
      trigger: "manual",
      onLocked: "skip",
      now: () => later,
    });
    expect(allowed).toMatchObject({ status: "succeeded", processed: 5 });
    expect(await ids("t_changed")).toEqual(range(11, 30));
  });

  it("a change of batchSize or timeout only (how fast, not what) resumes the same run with its cutoff", async () => {
    await seed("t_pace", 0, 20);
    const entry = testEntry(sweep, {
      pool: db.pool,
      id: "pace",
      options: { table: "t_pace" },
      retention: "1h",
      batchSize: 5,
      timeout: "1ms",
    });
    const runId = await suspendedRun(entry);
    const result = await runEntry({
      pool: db.pool,
      entry: { ...entry, batchSize: 50, timeoutMs: 60_000 },
      trigger: "continue",
      onLocked: "skip",
      now: () => new Date(NOW.getTime() + 365 * DAY),
    });
    expect(result).toMatchObject({ status: "succeeded", runId, processed: 20, cutoff: "2026-05-31T23:00:00.000Z" });
    expect(result.superseded).toBeUndefined();
  });

  it("a dry run says which unfinished run a real run would resume, and whether the config still matches it", async () => {
    await seed("t_dry_resumable", 10, 10);
    const entry = testEntry(sweep, {
      pool: db.pool,
      id: "dry-resumable",
      options: { table: "t_dry_resumable" },
      retention: "1h",
      batchSize: 5,
      timeout: "1ms",
    });
    const runId = await suspendedRun(entry);
    const same = await runEntry({ pool: db.pool, entry, trigger: "manual", dryRun: true, onLocked: "fail", now: () => NOW });
    expect(same.resumable).toEqual({ runId, cutoff: "2026-05-31T23:00:00.000Z", processed: 5, fingerprintMatches: true, changes: [] });
    const changed = await runEntry({
      pool: db.pool,
      entry: { ...entry, retentionMs: 30 * DAY },
      trigger: "manual",
      dryRun: true,
      onLocked: "fail",
      now: () => NOW,
    });
    expect(changed).toMatchObject({
      status: "succeeded",
      processed: 5,
      dryRun: true,
      resumable: { runId, processed: 5, fingerprintMatches: false, changes: ["retention 1h → 30d"] },
    });
    expect(await runsOf("dry-resumable")).toEqual([{ id: runId, status: "running", processed: 5, error: null }]);
    expect(await ids("t_dry_resumable")).toEqual(range(6, 20));
  });
});

describe("cancelling an unfinished run", () => {
  it("ends it cancelled and removes the service's pending continuation, so neither resumes it nor starts a run in its place", async () => {
    await seed("t_cancel", 10, 0);
    const entry = testEntry(sweep, {
      pool: db.pool,
      id: "cancel",
      options: { table: "t_cancel" },
      retention: "1h",
      batchSize: 5,
      timeout: "1ms",
    });
    const runId = await suspendedRun(entry);
    await db.pool.query(
      `SELECT purger_worker.add_job('purger:entry', '{"entry":"cancel","trigger":"continue"}'::json, job_key := 'purger:entry:cancel:continue')`,
    );
    const cancelled = await cancelRun({ pool: db.pool, entry: "cancel", workerSchema: "purger_worker" });
    expect(cancelled).toMatchObject({ id: runId, processed: 5 });
    expect(await runsOf("cancel")).toEqual([{ id: runId, status: "cancelled", processed: 5, error: "cancelled by an operator" }]);
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM purger_worker._private_jobs WHERE key = 'purger:entry:cancel:continue'",
    );
    expect(rows[0]).toEqual({ n: 0 });
    expect(await cancelRun({ pool: db.pool, entry: "cancel" })).toBeNull();
    expect(await ids("t_cancel")).toEqual(range(6, 10));
  });
});

describe("guards and crashes", () => {
  it("a run whose session dies during the guard's count is resumed guard first: the next run ends guarded and deletes nothing", async () => {
    await seed("t_guard_crash", 10, 0);
    const entry = testEntry(sweep, {
      pool: db.pool,
      id: "guard-crash",
      options: { table: "t_guard_crash" },
      retention: "7d",
      guard: { maxRows: 3 },
    });
    // Its own pool: the dying session must not go back to the shared one.
    const crashPool = new pg.Pool({ connectionString: db.url, max: 3 });
    crashPool.on("error", () => {});
    crashPool.on("connect", (client) => client.on("error", () => {}));
    dieInCount = true;
    try {
      await expect(runEntry({ pool: crashPool, entry, trigger: "manual", onLocked: "fail", now: () => NOW })).rejects.toThrow(
        /terminat|connection/,
      );
    } finally {
      dieInCount = false;
      await crashPool.end();
    }
    // As a killed process leaves it: `running`, resumable, and the guard never seen to pass.
    const { rows: left } = await db.pool.query("SELECT id::text, status FROM purger.runs WHERE entry = 'guard-crash'");
    expect(left).toEqual([{ id: expect.any(String), status: "running" }]);

    const next = await runEntry({ pool: db.pool, entry, trigger: "manual", onLocked: "fail", now: () => NOW });
    expect(next).toMatchObject({
      runId: left[0].id,
      status: "guarded",
      guard: "guard.maxRows: more than 3 items qualify (counted 4, stopped counting at 4); nothing was changed",
    });
    expect(next.superseded).toBeUndefined();
    expect(await ids("t_guard_crash")).toEqual(range(1, 10));
  });

  it("a run whose guard passed is resumed without counting again", async () => {
    await seed("t_guard_passed", 20, 0);
    const entry = testEntry(sweep, {
      pool: db.pool,
      id: "guard-passed",
      options: { table: "t_guard_passed" },
      retention: "1h",
      batchSize: 5,
      timeout: "1ms",
      guard: { maxRows: 20 },
    });
    const runId = await suspendedRun(entry);
    const { rows } = await db.pool.query("SELECT guard_passed_at IS NOT NULL AS passed FROM purger.runs WHERE id = $1", [runId]);
    expect(rows[0]).toEqual({ passed: true });
    // Rows arriving meanwhile would now exceed the guard (25 left), but it passed before the first change.
    await db.pool.query("INSERT INTO t_guard_passed (ts) SELECT $1::timestamptz - interval '40 days' FROM generate_series(1, 10)", [NOW]);
    const rest = await runEntry({
      pool: db.pool,
      entry: { ...entry, timeoutMs: 60_000 },
      trigger: "continue",
      onLocked: "skip",
      now: () => NOW,
    });
    expect(rest).toMatchObject({ status: "succeeded", runId, processed: 30 });
    expect(await ids("t_guard_passed")).toEqual([]);
  });
});

describe("the run's clock", () => {
  it("a host clock 30 days ahead of the database (a faked process clock) does not move the cutoff: rows inside the window remain", async () => {
    await seed("t_skew", 5, 10, null);
    const entry = { pool: db.pool, id: "skew", options: { table: "t_skew" }, retention: "7d" };
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 30 * DAY);
    const result = await runPlugin(sweep, entry);
    vi.useRealTimers();
    expect(result).toMatchObject({ status: "succeeded", processed: 5 });
    expect(await ids("t_skew")).toEqual(range(6, 15));
    const { rows } = await db.pool.query<{ inside: boolean }>(
      "SELECT cutoff BETWEEN now() - interval '7 days 1 minute' AND now() - interval '7 days' + interval '1 minute' AS inside FROM purger.runs WHERE id = $1",
      [result.runId],
    );
    expect(rows[0]).toEqual({ inside: true });
  });

  it("a bin handler's startedAt is the database's time too, whatever the host's clock says", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 30 * DAY);
    const items = await runBin(sweep, {
      pool: db.pool,
      id: "skew-bin",
      options: { table: "t_skew" },
      retention: "7d",
      items: [{ handler: "probe", payload: {} }],
    });
    vi.useRealTimers();
    expect(items).toMatchObject([{ status: "done" }]);
    const { rows } = await db.pool.query<{ inside: boolean }>(
      "SELECT $1::timestamptz BETWEEN now() - interval '1 minute' AND now() AS inside",
      [binStartedAt[0]],
    );
    expect(rows[0]).toEqual({ inside: true });
  });
});
