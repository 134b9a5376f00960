/**
 * Scenarios that need a PostgreSQL of their own (`pnpm test:slow`): R4, the
 * server restarted under a running `purger run`; and the embedded PostgreSQL
 * as the CLI starts it when purger.yaml has no `database:` — in a plain
 * directory and in one only root may enter.
 */
import { chmodSync, existsSync, mkdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it, onTestFailed } from "vitest";
import { createPool, startEmbeddedPostgres } from "@purger/core/host";
import { createTestDatabase } from "@purger/core/testing";
import {
  configText,
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

const cleanups: Array<() => void | Promise<void>> = [];
let processes: PurgerProcess[] = [];

afterEach(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  processes = [];
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function start(args: string[], dir: string, env: Record<string, string> = {}): PurgerProcess {
  const p = spawnPurger(args, { cwd: dir, env: { PURGER_HEARTBEAT_MS: "500", PURGER_DEAD_AFTER_MS: "5000", ...env } });
  processes.push(p);
  onTestFailed(() => console.log(`purger ${args.join(" ")} (pid ${p.pid}) stderr:\n${p.stderr.split("\n").slice(-60).join("\n")}`));
  return p;
}

describe("R1: a replica killed with SIGKILL while another keeps running", () => {
  it("the live replica releases the dead one's job at once and finishes the same run", async () => {
    const db = await createTestDatabase("failover");
    cleanups.push(() => db.drop());
    const OLD = 200_000;
    await seedTable(db.pool, "failover_events", OLD, 100);
    const { dir, cleanup } = tempDir("purger-failover-");
    cleanups.push(cleanup);
    writeConfig(
      dir,
      configText({
        url: db.url,
        plugins: retentionEntry({
          id: "failover",
          table: "failover_events",
          retention: "7d",
          batchSize: 500,
          timeout: "30s",
          runOnStart: true,
        }),
      }),
    );
    const a = start(["run", "--concurrency", "1"], dir);
    const b = start(["run", "--concurrency", "1"], dir);
    await Promise.all([a, b].map((p) => p.waitForLog((l) => l.event === "worker:start", 60_000)));
    // Whichever replica took the backfill is killed; its slice is far from its 30 s end.
    const [early] = await until(async () => {
      const runs = await runRows(db.pool, "failover");
      return runs[0] && runs[0].processed >= 5_000 ? runs : undefined;
    }, "the backfill to be under way");
    const working = [a, b].find((p) => p.logs().some((l) => l.event === "run:start" && l.entry === "failover"))!;
    const survivor = working === a ? b : a;
    working.kill("SIGKILL");
    await working.exited;
    const killedAt = performance.now();

    await survivor.waitForLog((l) => l.event === "run:start" && l.resumed === true && l.runId === early!.id, 20_000);
    expect(performance.now() - killedAt).toBeLessThan(15_000);
    expect(survivor.logs().some((l) => l.msg === "released the jobs of a dead purger process")).toBe(true);
    const done = await until(
      async () => (await runRows(db.pool, "failover")).find((r) => r.id === early!.id && r.status === "succeeded"),
      "the run to finish",
      90_000,
    );
    expect(done.processed).toBe(OLD);
    expect(await idSpan(db.pool, "failover_events")).toEqual({ count: 100, min: OLD + 1, max: OLD + 100 });
    survivor.kill("SIGTERM");
    expect((await survivor.exited).code).toBe(0);
  }, 180_000);
});

describe("R10: SIGTERM during a batch longer than shutdownTimeout", () => {
  it("exits 1 at the timeout with the batch in flight rolled back whole; what is gone is what the run recorded", async () => {
    const db = await createTestDatabase("shutdown");
    cleanups.push(() => db.drop());
    const OLD = 600_000;
    const BATCH = 300_000;
    await seedTable(db.pool, "shutdown_events", OLD, 100);
    const { dir, cleanup } = tempDir("purger-shutdown-");
    cleanups.push(cleanup);
    writeConfig(
      dir,
      configText({
        url: db.url,
        worker: "shutdownTimeout: 1s\n",
        plugins: retentionEntry({ id: "huge", table: "shutdown_events", retention: "7d", batchSize: BATCH, runOnStart: true }),
      }),
    );
    const service = start(["run", "--concurrency", "1"], dir);
    await until(
      async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() AND query ILIKE '%DELETE FROM%shutdown_events%'`,
        );
        return rows[0]!.n > 0 ? true : undefined;
      },
      "the first batch to be in flight",
      60_000,
      20,
    );
    const signalledAt = performance.now();
    service.kill("SIGTERM");
    const exit = await service.exited;
    const tookMs = performance.now() - signalledAt;
    const [run] = await runRows(db.pool, "huge");
    const gone = OLD + 100 - (await idSpan(db.pool, "shutdown_events")).count;
    expect(gone).toBe(run!.processed);
    expect(run!.processed % BATCH).toBe(0);
    if (exit.code === 1) {
      // The batch outlived the drain: it was rolled back, the process left at the timeout.
      expect(exit.stderr).toContain("shutdown timeout passed");
      expect(tookMs).toBeLessThan(5_000);
      expect(run!.status).toBe("running");
    } else {
      // A fast machine finished the batch within the second: a clean drain.
      expect(exit.code).toBe(0);
    }
    // The run is resumable either way.
    const once = await purger(["once", "huge", "--json"], { cwd: dir, timeoutMs: 120_000 });
    expect(once.code, once.stderr).toBe(0);
    expect(JSON.parse(once.stdout)).toMatchObject({ runId: run!.id, status: "succeeded", processed: OLD });
  }, 240_000);
});

describe("R4: PostgreSQL restarted during a run", () => {
  it("the worker reconnects and finishes the run; the run record matches what was deleted", async () => {
    const { dir, cleanup } = tempDir("purger-r4-");
    cleanups.push(cleanup);
    // Reachable by the PostgreSQL user when running as root, so the cluster stays inside the temp dir.
    chmodSync(dir, 0o755);
    const pgDir = join(dir, "pg");
    let server = await startEmbeddedPostgres({ dir: pgDir });
    cleanups.push(() => server.stop());
    const port = Number(new URL(server.url).port);
    const pool = createPool({ url: server.url, max: 2 });
    pool.on("error", () => {});
    cleanups.push(() => pool.end().catch(() => {}));

    const OLD = 200_000;
    await seedTable(pool, "r4_events", OLD, 500);
    writeConfig(
      dir,
      configText({
        url: server.url,
        plugins: retentionEntry({ id: "r4", table: "r4_events", retention: "7d", batchSize: 1000, timeout: "2s", runOnStart: true }),
      }),
    );
    const service = start(["run", "--concurrency", "1"], dir);
    await until(
      async () => ((await runRows(pool, "r4"))[0]?.processed ?? 0) >= 10_000 || undefined,
      "the backfill to be under way",
      60_000,
    );

    await server.stop();
    await sleep(2_000);
    expect(service.child.exitCode).toBe(null);
    server = await startEmbeddedPostgres({ dir: pgDir, port });
    expect(server.owned).toBe(true);

    const done = await until(
      async () => {
        const runs = await runRows(pool, "r4").catch(() => []);
        return runs.find((r) => r.processed > 0 && r.status !== "running");
      },
      "the run to finish after the restart",
      120_000,
      500,
    );
    expect(done).toMatchObject({ status: "succeeded", processed: OLD });
    expect(await idSpan(pool, "r4_events")).toEqual({ count: 500, min: OLD + 1, max: OLD + 500 });
    // One run did the whole backfill: the restart did not start a second one over it.
    const runs = await runRows(pool, "r4");
    expect(runs.filter((r) => r.processed > 0).map((r) => r.id)).toEqual([done.id]);
    expect(service.child.exitCode).toBe(null);
    service.kill("SIGTERM");
    expect((await service.exited).code).toBe(0);
  }, 240_000);
});

describe("R4: PostgreSQL restarted while `once` waits for the entry lock", () => {
  it("once fails with a message (exit 1), not a crash with a stack trace", async () => {
    const { dir, cleanup } = tempDir("purger-r4-lock-");
    cleanups.push(cleanup);
    // Reachable by the PostgreSQL user when running as root, so the cluster stays inside the temp dir.
    chmodSync(dir, 0o755);
    const pgDir = join(dir, "pg");
    let server = await startEmbeddedPostgres({ dir: pgDir });
    cleanups.push(() => server.stop());
    const port = Number(new URL(server.url).port);
    const pool = createPool({ url: server.url, max: 2 });
    pool.on("error", () => {});
    cleanups.push(() => pool.end().catch(() => {}));
    await seedTable(pool, "r4_lock", 10, 0);
    writeConfig(dir, configText({ url: server.url, plugins: retentionEntry({ id: "r4-lock", table: "r4_lock", retention: "7d" }) }));

    const holder = await pool.connect();
    holder.on("error", () => {});
    await holder.query("SELECT pg_advisory_lock(hashtextextended('purger:entry:r4-lock', 0))");
    const once = start(["once", "r4-lock"], dir);
    await once.waitForLog((l) => l.event === "run:lock:wait", 60_000);
    await server.stop();
    const exit = await once.exited;
    holder.release(true);
    server = await startEmbeddedPostgres({ dir: pgDir, port });
    expect(exit.code).toBe(1);
    const text = exit.stderr.split("\n").filter((l) => l.length > 0 && !l.startsWith("{"));
    expect(text[0]).toMatch(/^purger: /);
    expect(exit.stderr).not.toMatch(/\n\s+at /);
    expect(await idSpan(pool, "r4_lock")).toMatchObject({ count: 10 });
  }, 240_000);
});

describe("the embedded PostgreSQL through the CLI (no `database:` in purger.yaml)", () => {
  /** Exercise a project directory: the first command creates .purger/, the next ones reuse it. */
  async function exercise(dir: string): Promise<void> {
    writeConfig(dir, configText({ url: null, plugins: retentionEntry({ id: "events", table: "events", retention: "7d", batchSize: 20 }) }));
    expect(existsSync(join(dir, ".purger"))).toBe(false);
    const status = await purger(["status", "--json"], { cwd: dir, timeoutMs: 180_000 });
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ entries: [{ entry: "events", last: null }] });
    const pgDir = join(dir, ".purger", "pg");
    expect(existsSync(join(pgDir, "data", "PG_VERSION"))).toBe(true);
    // The command stopped the server it started.
    expect(existsSync(join(pgDir, "data", "postmaster.pid"))).toBe(false);
    const cluster = statSync(join(pgDir, "data", "PG_VERSION")).ino;

    // Seed the table through the same embedded server (the test starts it, then stops it).
    const server = await startEmbeddedPostgres({ dir: pgDir });
    const pool = createPool({ url: server.url, max: 1 });
    try {
      await seedTable(pool, "events", 50, 5);
    } finally {
      await pool.end();
      await server.stop();
    }

    const first = await purger(["once", "events", "--json"], { cwd: dir, timeoutMs: 120_000 });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ status: "succeeded", processed: 50, runId: "1" });
    const second = await purger(["once", "events", "--json"], { cwd: dir, timeoutMs: 120_000 });
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ status: "succeeded", processed: 0, runId: "2" });
    expect(statSync(join(pgDir, "data", "PG_VERSION")).ino).toBe(cluster);
    expect(existsSync(join(pgDir, "data", "postmaster.pid"))).toBe(false);
  }

  it("in a plain directory: .purger/ is created, once --json works, the next command reuses it", async () => {
    const { dir, cleanup } = tempDir("purger-embedded-");
    cleanups.push(cleanup);
    chmodSync(dir, 0o755);
    await exercise(dir);
  }, 300_000);

  it.runIf(process.getuid?.() === 0)(
    "as root, in a directory only root may enter",
    async () => {
      const { dir: outer, cleanup } = tempDir("purger-rootonly-");
      cleanups.push(cleanup);
      chmodSync(outer, 0o700);
      const dir = join(outer, "checkout");
      mkdirSync(dir);
      cleanups.push(() => {
        // The data lives outside the root-only directory (the PostgreSQL user cannot enter it): remove it too.
        const link = join(dir, ".purger", "pg", "data");
        try {
          const target = readlinkSync(link);
          if (target.startsWith("/var/lib/purger/data-")) rmSync(target, { recursive: true, force: true });
        } catch {
          // not a symlink: nothing outside
        }
      });
      await exercise(dir);
    },
    300_000,
  );
});
