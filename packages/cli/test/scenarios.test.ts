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
import { createTestDatabase, type TestDatabase } from "../../core/src/db/test-database.js";
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
async function runWhen(entry: string, probe: (run: Awaited<ReturnType<typeof runRows>>[number]) => boolean, what: string, timeoutMs = 30_000) {
  return until(async () => (await runRows(pool, entry)).find((r) => !r.dry_run && probe(r)), what, timeoutMs);
}

describe("R1: kill -9 in the middle of a backfill, then restart", () => {
  it("resumes the same run from its checkpoint at once; every row past the cutoff goes, every row within it stays", async () => {
    const OLD = 300_000;
    const FRESH = 2_000;
    await seedTable(pool, "r1_events", OLD, FRESH);
    const dir = project(retentionEntry({ id: "backfill", table: "r1_events", retention: "7d", batchSize: 500, timeout: "1s", runOnStart: true }));

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
