/**
 * P6 (bench/README.md): a run with nothing to do costs at most 25 ms of engine overhead.
 * `runEntry` (the run loop `purger once` and the worker call) on an empty
 * table, timed many times; the median is the figure. Two cases:
 *   - retention: the retention plugin on an empty indexed table (what a user's
 *     empty run costs: the plugin's catalog lookups, estimate, run record, one
 *     empty batch, the record's end);
 *   - engine: a plugin whose batch returns at once (the engine alone).
 *
 *   pnpm exec tsx bench/p6-overhead.ts
 *   P6_RUNS=100 PURGER_BENCH_PG_URL=postgres://… pnpm exec tsx bench/p6-overhead.ts
 */
import { fileURLToPath } from "node:url";
import { createPool, definePlugin, defineSchema, migrate, runEntry, startEmbeddedPostgres, type AnyPlugin } from "@purger/core/host";
import { testEntry } from "@purger/core/testing";
import retention from "@purger/plugin-retention";

const RUNS = Number(process.env.P6_RUNS ?? 300);
const WARMUP = 20;
const TARGET_MS = 25;

const noop = definePlugin<Record<string, never>>({
  name: "p6-noop",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", additionalProperties: false }),
  async batch() {
    return { processed: 0, cursor: null };
  },
});

async function main(): Promise<void> {
  let stop = async () => {};
  let url = process.env.PURGER_BENCH_PG_URL;
  if (!url) {
    const server = await startEmbeddedPostgres({ dir: fileURLToPath(new URL("../.purger/bench-p6-pg", import.meta.url)) });
    url = server.url;
    stop = () => server.stop();
  }
  const admin = createPool({ url, max: 1 });
  await admin.query("DROP DATABASE IF EXISTS purger_bench_p6 WITH (FORCE)");
  await admin.query("CREATE DATABASE purger_bench_p6");
  await admin.end();
  const benchUrl = new URL(url);
  benchUrl.pathname = "/purger_bench_p6";
  const pool = createPool({ url: benchUrl.toString(), max: 4 });
  try {
    await migrate(pool, { workerSchema: "purger_worker" });
    await pool.query("CREATE TABLE p6_empty (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL)");
    await pool.query("CREATE INDEX ON p6_empty (created_at)");
    await pool.query("ANALYZE p6_empty");

    const results = [];
    for (const [name, plugin, options] of [
      ["retention", retention, { table: "p6_empty", column: "created_at" }],
      ["engine", noop, {}],
    ] as Array<[string, AnyPlugin, unknown]>) {
      const entry = testEntry(plugin, { pool, id: `p6-${name}`, options, ...(plugin.usesRetention ? { retention: "7d" } : {}) });
      const times: number[] = [];
      for (let i = 0; i < WARMUP + RUNS; i++) {
        const t0 = performance.now();
        const result = await runEntry({ pool, entry, trigger: "manual", onLocked: "wait" });
        const ms = performance.now() - t0;
        if (result.status !== "succeeded" || result.processed !== 0) throw new Error(`unexpected run: ${JSON.stringify(result)}`);
        if (i >= WARMUP) times.push(ms);
      }
      times.sort((a, b) => a - b);
      const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
      const stats = { name, median: at(0.5), p90: at(0.9), min: times[0]! };
      console.log(
        `${name}: median ${stats.median.toFixed(1)} ms, p90 ${stats.p90.toFixed(1)} ms, min ${stats.min.toFixed(1)} ms over ${RUNS} runs`,
      );
      results.push(stats);
    }
    const [withPlugin, engine] = results;
    console.log(
      `P6 empty run (target ≤ ${TARGET_MS} ms): retention median ${withPlugin!.median.toFixed(1)} ms (${(withPlugin!.median / TARGET_MS).toFixed(2)} × target), ` +
        `engine alone median ${engine!.median.toFixed(1)} ms (${(engine!.median / TARGET_MS).toFixed(2)} × target)`,
    );
  } finally {
    await pool.end();
    await stop();
  }
}

await main();
