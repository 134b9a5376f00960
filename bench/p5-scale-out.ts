/**
 * P5 (bench/README.md): scale-out. Six independent retention entries, each with a
 * backlog, worked by one `purger run --concurrency 1` process, then by three
 * such processes on the same database. The time is the cluster's: from the
 * first run's start to the last run's end (purger.runs), so process start-up
 * is not counted. Target: three processes ≥ 1.5 × one, every process takes
 * work, and no row is deleted twice (what each run recorded equals what is
 * gone, and the rows within the retention remain).
 *
 *   pnpm exec tsx bench/p5-scale-out.ts
 *   P5_ROWS=50000 P5_REPEAT=1 pnpm exec tsx bench/p5-scale-out.ts      # quicker
 *   PURGER_BENCH_PG_URL=postgres://… pnpm exec tsx bench/p5-scale-out.ts
 *
 * The processes start first; once every one of them beats, each entry is
 * asked to run (`requestRun`, the job `purger once` would leave to the
 * cluster), so slow start-ups do not count. Entries run in slices (`timeout:
 * 1s`), so a backlog moves between processes as they free up. Each
 * measurement starts from a freshly seeded database;
 * one and three processes alternate, and the best of P5_REPEAT (default 2)
 * of each is kept: the machine is shared and noisy.
 */
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { createPool, loadConfig, requestRun, startEmbeddedPostgres, type PurgerConfig } from "@purger/core/host";
import {
  configText,
  idSpan,
  retentionEntry,
  seedTable,
  spawnPurger,
  tempDir,
  writeConfig,
  type PurgerProcess,
} from "../packages/cli/test/helpers.js";

const ROWS = Number(process.env.P5_ROWS ?? 100_000);
const REPEAT = Number(process.env.P5_REPEAT ?? 2);
const ENTRIES = 6;
const FRESH = 100;
const TARGET = 1.5;
/** graphile-worker, as core resolves it (the bench directory has no node_modules of its own). */
const graphileWorker = createRequire(fileURLToPath(new URL("../packages/core/package.json", import.meta.url)))("graphile-worker") as {
  makeWorkerUtils(options: { pgPool: pg.Pool; schema: string }): Promise<Parameters<typeof requestRun>[0]>;
};

interface Measurement {
  processes: number;
  ms: number;
  /** run:start lines (slices) logged by each process. */
  slices: number[];
  duplicates: number;
}

async function main(): Promise<void> {
  let stop = async () => {};
  let serverUrl = process.env.PURGER_BENCH_PG_URL;
  if (!serverUrl) {
    const server = await startEmbeddedPostgres({
      dir: fileURLToPath(new URL("../.purger/bench-p5-pg", import.meta.url)),
      maxConnections: 200,
    });
    serverUrl = server.url;
    stop = () => server.stop();
  }
  const url = new URL(serverUrl);
  url.pathname = "/purger_bench_p5";
  const { dir, cleanup } = tempDir("purger-bench-p5-");
  let plugins = "";
  for (let i = 1; i <= ENTRIES; i++) {
    plugins += retentionEntry({ id: `e${i}`, table: `p5_e${i}`, retention: "7d", batchSize: 1000, timeout: "1s" });
  }
  writeConfig(dir, configText({ url: url.toString(), plugins }));
  const config = await loadConfig({ cwd: dir, resolvePaths: [fileURLToPath(new URL("../packages/cli", import.meta.url))] });

  const best = new Map<number, Measurement>();
  const all: Measurement[] = [];
  try {
    for (let round = 0; round < REPEAT; round++) {
      for (const n of round % 2 === 0 ? [1, 3] : [3, 1]) {
        const m = await measure(serverUrl, config, dir, n);
        all.push(m);
        log(
          `${n} process${n === 1 ? "" : "es"}: ${seconds(m.ms)}, slices per process ${m.slices.join("/")}, duplicate deletions ${m.duplicates}`,
        );
        const previous = best.get(n);
        if (!previous || m.ms < previous.ms) best.set(n, m);
      }
    }
  } finally {
    cleanup();
    await stop();
  }
  const one = best.get(1)!;
  const three = best.get(3)!;
  const ratio = one.ms / three.ms;
  const everyProcessWorked = all.filter((m) => m.processes === 3).every((m) => m.slices.every((s) => s > 0));
  const duplicates = all.reduce((sum, m) => sum + m.duplicates, 0);
  console.log(
    `P5 scale-out (target ≥ ${TARGET}×): 3 processes ${ratio.toFixed(2)}× 1 process (${seconds(three.ms)} vs ${seconds(one.ms)}, ` +
      `${ENTRIES}×${ROWS} rows); every process worked: ${everyProcessWorked ? "yes" : "no"}; duplicate deletions: ${duplicates}`,
  );
}

async function measure(serverUrl: string, config: PurgerConfig, dir: string, processes: number): Promise<Measurement> {
  const admin = createPool({ url: serverUrl, max: 1 });
  await admin.query("DROP DATABASE IF EXISTS purger_bench_p5 WITH (FORCE)");
  await admin.query("CREATE DATABASE purger_bench_p5");
  await admin.end();
  const pool = createPool({ url: config.database.url!, max: 4 });
  const children: PurgerProcess[] = [];
  try {
    for (let i = 1; i <= ENTRIES; i++) await seedTable(pool, `p5_e${i}`, ROWS, FRESH);
    await pool.query("CHECKPOINT");
    for (let i = 0; i < processes; i++) {
      children.push(spawnPurger(["run", "--no-tui", "--concurrency", "1"], { cwd: dir, env: { PURGER_HEARTBEAT_MS: "500" } }));
    }
    await Promise.all(children.map((c) => c.waitForLog((l) => l.event === "worker:start", 120_000)));
    for (;;) {
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM purger.processes");
      if (rows[0]!.n === processes) break;
      await sleep(50);
    }
    const utils = await graphileWorker.makeWorkerUtils({ pgPool: pool, schema: config.worker.schema });
    try {
      for (const entry of config.entries) await requestRun(utils, entry);
    } finally {
      await utils.release();
    }
    const deadline = Date.now() + 600_000;
    for (;;) {
      const finished = await pool
        .query<{ n: number }>("SELECT count(DISTINCT entry)::int AS n FROM purger.runs WHERE status = 'succeeded' AND processed > 0")
        .then(
          (r) => r.rows[0]!.n,
          () => 0,
        );
      if (finished === ENTRIES) break;
      const dead = children.find((c) => c.child.exitCode !== null);
      if (dead) throw new Error(`a purger process exited early (${dead.child.exitCode}):\n${dead.stderr.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error("the backlogs were not done after 10 minutes");
      await sleep(100);
    }
    const { rows } = await pool.query<{ ms: number }>(
      "SELECT extract(epoch FROM max(finished_at) - min(started_at)) * 1000 AS ms FROM purger.runs WHERE processed > 0",
    );
    for (const c of children) c.kill("SIGTERM");
    const exits = await Promise.all(children.map((c) => c.exited));
    if (exits.some((e) => e.code !== 0)) throw new Error(`a purger process exited with ${exits.map((e) => e.code).join(", ")}`);
    return { processes, ms: Number(rows[0]!.ms), slices: children.map(slicesOf), duplicates: await duplicateDeletions(pool) };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await pool.end();
  }
}

/** Rows counted by more than one run, or counted but still there: 0 when every row went exactly once. */
async function duplicateDeletions(pool: pg.Pool): Promise<number> {
  let off = 0;
  for (let i = 1; i <= ENTRIES; i++) {
    const { rows } = await pool.query<{ n: number }>(
      "SELECT coalesce(sum(processed), 0)::int AS n FROM purger.runs WHERE entry = $1 AND NOT dry_run",
      [`e${i}`],
    );
    const left = await idSpan(pool, `p5_e${i}`);
    if (left.count !== FRESH || left.min !== ROWS + 1)
      throw new Error(`p5_e${i}: ${JSON.stringify(left)} left, expected the ${FRESH} fresh rows`);
    off += Math.abs(rows[0]!.n - ROWS);
  }
  return off;
}

function slicesOf(p: PurgerProcess): number {
  return p.logs().filter((l) => l.event === "run:start").length;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function log(text: string): void {
  console.log(`[p5] ${text}`);
}

await main();
