/**
 * Multi-process scenarios (QUALITY R1, R2, R6, R10) with the real binary:
 * processes killed with SIGKILL, drained with SIGTERM, interrupted with
 * SIGINT, and three `purger run` replicas sharing one database. Each test
 * states its data and asserts exactly which rows remain and what purger.runs
 * recorded.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import type pg from "pg";
import { createTestDatabase, type TestDatabase } from "@purger/core/testing";
import {
  configText,
  NOTES_PLUGIN,
  idSpan,
  purger,
  retentionEntry,
  runRows,
  seedTable,
  spawnPurger,
  tempDir,
  until,
  writeConfig,
  type PurgerProcess,
} from "./helpers.js";

let db: TestDatabase;
let pool: pg.Pool;
const cleanups: Array<() => void> = [];
let processes: PurgerProcess[] = [];

/** A short heartbeat so live processes notice dead ones in tests. */
const HEARTBEAT = { PURGER_HEARTBEAT_MS: "500", PURGER_DEAD_AFTER_MS: "5000" };

beforeAll(async () => {
  db = await createTestDatabase("scenarios");
  pool = db.pool;
});
afterEach(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  processes = [];
});
afterAll(async () => {
  for (const c of cleanups) c();
  await db?.drop();
});

function project(plugins: string, more: { defaults?: string; worker?: string } = {}): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  writeConfig(dir, configText({ url: db.url, plugins, ...more }));
  return dir;
}

function start(args: string[], dir: string, env: Record<string, string> = {}): PurgerProcess {
  const p = spawnPurger(args, { cwd: dir, env: { ...HEARTBEAT, ...env } });
  processes.push(p);
  onTestFailed(() => {
    const tail = p.stderr.split("\n").slice(-40).join("\n");
    console.log(`purger ${args.join(" ")} (pid ${p.pid}) stderr, last lines:\n${tail}`);
  });
  return p;
}

/** The entry's one non-dry run record once `probe` holds for it. */
async function runWhen(
  entry: string,
  probe: (run: Awaited<ReturnType<typeof runRows>>[number]) => boolean,
  what: string,
  timeoutMs = 30_000,
) {
  return until(async () => (await runRows(pool, entry)).find((r) => !r.dry_run && probe(r)), what, timeoutMs);
}

describe("R1: kill -9 in the middle of a backfill, then restart", () => {
  it("resumes the same run from its checkpoint at once; every row past the cutoff goes, every row within it stays", async () => {
    const OLD = 300_000;
    const FRESH = 2_000;
    await seedTable(pool, "r1_events", OLD, FRESH);
    const dir = project(
      retentionEntry({ id: "backfill", table: "r1_events", retention: "7d", batchSize: 500, timeout: "1s", runOnStart: true }),
    );

    const first = start(["run", "--concurrency", "1"], dir);
    const early = await runWhen("backfill", (r) => r.processed >= 5_000, "the first progress of the backfill");
    first.kill("SIGKILL");
    const killed = await first.exited;
    expect(killed.signal).toBe("SIGKILL");
    const [atKill] = await runRows(pool, "backfill");
    expect(atKill).toMatchObject({ id: early.id, status: "running" });
    // What was committed is exactly what the checkpoint says: batch and checkpoint share a transaction.
    expect((await idSpan(pool, "r1_events")).count).toBe(OLD + FRESH - atKill!.processed);
    expect(atKill!.processed).toBeLessThan(OLD);

    const restartedAt = performance.now();
    const second = start(["run", "--concurrency", "1"], dir);
    // The dead process's graphile-worker job (and the entry's queue) is released by the new process's
    // heartbeat at once, not after graphile-worker's 4-hour lock expiry.
    await second.waitForLog((l) => l.event === "run:start" && l.resumed === true && l.runId === early.id, 20_000);
    const tookOverMs = performance.now() - restartedAt;
    expect(second.logs().some((l) => l.msg === "released the jobs of a dead purger process")).toBe(true);
    const done = await runWhen("backfill", (r) => r.id === early.id && r.status === "succeeded", "the resumed run to finish", 60_000);
    expect(tookOverMs).toBeLessThan(20_000);
    expect(done).toMatchObject({ processed: OLD });
    expect(done.slices).toBeGreaterThan(1);

    second.kill("SIGTERM");
    expect((await second.exited).code).toBe(0);
    expect(await idSpan(pool, "r1_events")).toEqual({ count: FRESH, min: OLD + 1, max: OLD + FRESH });
    const runs = await runRows(pool, "backfill");
    expect(runs.filter((r) => r.processed > 0).map((r) => r.id)).toEqual([early.id]);
    expect(runs.every((r) => r.status === "succeeded")).toBe(true);
  }, 120_000);
});

describe("R1: kill -9 of `purger once`", () => {
  it("status shows the run as unfinished, not running; the next once resumes it from its checkpoint", async () => {
    const OLD = 60_000;
    await seedTable(pool, "r1_once", OLD, 100);
    const dir = project(retentionEntry({ id: "backfill-once", table: "r1_once", retention: "7d", batchSize: 500 }));
    const first = start(["once", "backfill-once"], dir);
    const early = await runWhen("backfill-once", (r) => r.processed >= 5_000, "the first progress");
    first.kill("SIGKILL");
    await first.exited;
    const [atKill] = await runRows(pool, "backfill-once");

    const [status, text] = await Promise.all([purger(["status", "--json"], { cwd: dir }), purger(["status"], { cwd: dir })]);
    expect(status.code).toBe(0);
    const [entry] = (JSON.parse(status.stdout) as { entries: Array<Record<string, unknown>> }).entries;
    expect(entry).toMatchObject({
      entry: "backfill-once",
      running: null,
      last: null,
      unfinished: { id: early.id, status: "running", processed: atKill!.processed },
    });
    expect(text.stdout.split("\n")[1]).toMatch(new RegExp(`^backfill-once\\s+unfinished \\(${atKill!.processed}/\\d+\\)\\s+never`));

    const second = await purger(["once", "backfill-once", "--json"], { cwd: dir });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ runId: early.id, status: "succeeded", processed: OLD });
    expect(await idSpan(pool, "r1_once")).toEqual({ count: 100, min: OLD + 1, max: OLD + 100 });
    const [run] = await runRows(pool, "backfill-once");
    expect(run).toMatchObject({ id: early.id, status: "succeeded", processed: OLD, slices: 1 });
  }, 120_000);
});

/** Whether a DELETE of `table` is executing right now (a batch in flight). */
async function batchInFlight(table: string): Promise<boolean> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() AND query ILIKE $1`,
    [`%DELETE FROM%${table}%`],
  );
  return rows[0]!.n > 0;
}

describe("R10: signals during a batch", () => {
  const OLD = 150_000;
  const BATCH = 50_000;

  it("SIGTERM to `purger run`: the batch in flight commits whole, exit 0 within shutdownTimeout, the run stays resumable", async () => {
    await seedTable(pool, "r10_run", OLD, 100);
    const dir = project(retentionEntry({ id: "big", table: "r10_run", retention: "7d", batchSize: BATCH, runOnStart: true }), {
      worker: "shutdownTimeout: 20s\n",
    });
    const service = start(["run", "--concurrency", "1"], dir);
    await runWhen("big", (r) => r.processed >= BATCH, "the first batch to commit");
    await until(async () => ((await batchInFlight("r10_run")) ? true : undefined), "the second batch to be in flight", 30_000, 20);
    const signalledAt = performance.now();
    service.kill("SIGTERM");
    const exit = await service.exited;
    expect(exit.code).toBe(0);
    expect(performance.now() - signalledAt).toBeLessThan(20_000);
    expect(exit.stderr).toContain("draining: running batches finish, then purger stops");

    const [run] = await runRows(pool, "big");
    const left = (await idSpan(pool, "r10_run")).count;
    // Batch and checkpoint commit together: what is gone is exactly what the run recorded, in whole batches.
    expect(OLD + 100 - left).toBe(run!.processed);
    expect(run!.processed % BATCH).toBe(0);
    expect(run!.processed).toBeGreaterThanOrEqual(2 * BATCH);
    expect(run!.status).toBe("running");

    // Resumable: the next run continues this one.
    const once = await purger(["once", "big", "--json"], { cwd: dir });
    expect(once.code).toBe(0);
    expect(JSON.parse(once.stdout)).toMatchObject({ runId: run!.id, status: "succeeded", processed: OLD });
    expect(await idSpan(pool, "r10_run")).toEqual({ count: 100, min: OLD + 1, max: OLD + 100 });
  }, 120_000);

  it("SIGINT to `purger once`: exit 130, the batch in flight commits whole, the run recorded as interrupted", async () => {
    await seedTable(pool, "r10_once", OLD, 100);
    const dir = project(retentionEntry({ id: "big-once", table: "r10_once", retention: "7d", batchSize: BATCH }));
    const once = start(["once", "big-once", "--json"], dir);
    await runWhen("big-once", (r) => r.processed >= BATCH, "the first batch to commit");
    await until(async () => ((await batchInFlight("r10_once")) ? true : undefined), "the second batch to be in flight", 30_000, 20);
    once.kill("SIGINT");
    const exit = await once.exited;
    expect(exit.code).toBe(130);
    const summary = JSON.parse(exit.stdout) as { status: string; processed: number; runId: string };
    expect(summary.status).toBe("interrupted");
    const [run] = await runRows(pool, "big-once");
    expect(run).toMatchObject({ id: summary.runId, status: "interrupted", processed: summary.processed, error: "interrupted" });
    expect(run!.finished_at).not.toBe(null);
    expect(OLD + 100 - (await idSpan(pool, "r10_once")).count).toBe(run!.processed);
    expect(run!.processed % BATCH).toBe(0);
    expect(run!.processed).toBeGreaterThanOrEqual(2 * BATCH);
  }, 120_000);
});

describe("R2: three `purger run` processes on one database", () => {
  it("no entry runs twice at once, each tick runs once cluster-wide, every process takes work, every bin item handled once; a broken entry fails visibly on every tick (R9)", async () => {
    const ENTRIES = 5;
    const ROWS = 20_000;
    await pool.query("DROP TABLE IF EXISTS r2_tick; CREATE TABLE r2_tick (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL)");
    for (let i = 1; i <= ENTRIES; i++) await seedTable(pool, `r2_e${i}`, ROWS, 50);
    let plugins = retentionEntry({ id: "tick", table: "r2_tick", retention: "1h", schedule: "every 2s" });
    // Its table does not exist: every tick fails before the run starts, and the schedule goes on.
    plugins += retentionEntry({ id: "broken", table: "r2_missing", retention: "1h", schedule: "every 2s" });
    for (let i = 1; i <= ENTRIES; i++) {
      plugins += retentionEntry({ id: `e${i}`, table: `r2_e${i}`, retention: "7d", batchSize: 500, timeout: "300ms", runOnStart: true });
    }
    plugins += `- id: notes\n  use: ./notes-plugin.mjs\n  options: {}\n`;
    const dir = project(plugins);
    writeConfig(dir, NOTES_PLUGIN, "notes-plugin.mjs");

    const replicas = [0, 1, 2].map(() => start(["run", "--concurrency", "2"], dir));
    await Promise.all(replicas.map((p) => p.waitForLog((l) => l.event === "worker:start", 60_000)));
    const windowStart = Date.now();
    const status = purger(["status", "--json"], { cwd: dir });
    // Bin items arrive while the three replicas work, each in its own transaction.
    const items: string[] = [];
    for (let i = 1; i <= 30; i++) {
      const { rows } = await pool.query<{ id: string }>("SELECT purger.enqueue('notes.note', $1::jsonb)::text AS id", [
        JSON.stringify({ id: i }),
      ]);
      items.push(rows[0]!.id);
      await sleep(150);
    }
    await until(
      async () => {
        const runs = await runRows(pool);
        const finished = Array.from({ length: ENTRIES }, (_, i) =>
          runs.some((r) => r.entry === `e${i + 1}` && r.status === "succeeded" && r.processed > 0),
        );
        return finished.every(Boolean) && Date.now() - windowStart > 10_000 ? true : undefined;
      },
      "every backlog to be done and 10 s to pass",
      90_000,
      250,
    );
    const live = JSON.parse((await status).stdout) as { processes: Array<{ pid: number }> };
    expect(live.processes.map((p) => p.pid).sort()).toEqual(replicas.map((p) => p.pid).sort());
    for (const p of replicas) p.kill("SIGTERM");
    const exits = await Promise.all(replicas.map((p) => p.exited));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);

    const runs = (await runRows(pool)).filter((r) => !r.dry_run);
    // No two runs of one entry overlap in time.
    for (const entry of new Set(runs.map((r) => r.entry))) {
      const spans = runs
        .filter((r) => r.entry === entry)
        .map((r) => [r.started_at.getTime(), (r.finished_at ?? new Date()).getTime()] as const)
        .sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) expect(spans[i]![0], `runs of ${entry} overlap`).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    }
    // Each backlog was worked by exactly one run, whose count matches what is gone; the fresh rows stay.
    for (let i = 1; i <= ENTRIES; i++) {
      const working = runs.filter((r) => r.entry === `e${i}` && r.processed > 0);
      expect(working.map((r) => [r.status, r.processed])).toEqual([["succeeded", ROWS]]);
      expect(await idSpan(pool, `r2_e${i}`)).toEqual({ count: 50, min: ROWS + 1, max: ROWS + 50 });
    }
    // `every 2s`: one run per tick for the whole cluster, not one per replica; the broken entry too.
    for (const entry of ["tick", "broken"]) {
      const ticks = runs
        .filter((r) => r.entry === entry)
        .map((r) => r.started_at.getTime())
        .sort((a, b) => a - b);
      const spanMs = ticks[ticks.length - 1]! - ticks[0]!;
      expect(ticks.length, entry).toBeGreaterThanOrEqual(3);
      expect(ticks.length, entry).toBeLessThanOrEqual(Math.floor(spanMs / 2_000) + 1);
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!, entry).toBeGreaterThanOrEqual(1_900);
    }
    const broken = runs.filter((r) => r.entry === "broken");
    expect(new Set(broken.map((r) => `${r.status}: ${r.error}`))).toEqual(
      new Set([
        'failed: table "r2_missing" does not exist in the search_path (entry "broken", options.table); check the table name and the database purger connects to (`purger doctor`)',
      ]),
    );
    // Every bin item handled exactly once, and done.
    const { rows: notes } = await pool.query<{ item: number; n: number }>(
      "SELECT item, count(*)::int AS n FROM notes GROUP BY item ORDER BY item",
    );
    expect(notes).toEqual(Array.from({ length: 30 }, (_, i) => ({ item: i + 1, n: 1 })));
    const { rows: bin } = await pool.query<{ status: string; n: number }>(
      "SELECT status, count(*)::int AS n FROM purger.bin GROUP BY status",
    );
    expect(bin).toEqual([{ status: "done", n: 30 }]);
    // Every replica took work: slices of the backlogs, ticks or bin items.
    const { rows: handlers } = await pool.query<{ pid: number }>("SELECT DISTINCT pid FROM notes");
    // (Backlog slices alone could all land on the replicas that started first: runOnStart work begins with the first one up.)
    const worked = replicas.map((p) => p.logs().some((l) => l.event === "run:start") || handlers.some((h) => h.pid === p.pid));
    expect(worked).toEqual([true, true, true]);
  }, 150_000);
});
