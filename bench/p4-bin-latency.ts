/**
 * P4 (bench/README.md): bin latency on an idle worker — from `enqueue` (its own
 * committed transaction) to the item handled (`bin:item:done`, emitted once
 * the item's row says `done`). Targets: p50 ≤ 50 ms, p99 ≤ 250 ms, which
 * only LISTEN/NOTIFY can meet (graphile-worker's poll interval is 2 s).
 *
 *   pnpm exec tsx bench/p4-bin-latency.ts            # embedded PostgreSQL under .purger/bench-pg
 *   (or node --import tsx bench/p4-bin-latency.ts where the tsx package resolves from the root)
 *   PURGER_BENCH_PG_URL=postgres://… pnpm exec tsx bench/p4-bin-latency.ts
 *   P4_ITEMS=500 P4_GAP_MS=50 …
 *
 * Items go one at a time with a pause between them (P4_GAP_MS, default 25 ms),
 * so the worker is idle, waiting on its LISTEN, each time. The handler writes
 * one row (a visible effect), as a real handler would at least.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  binKinds,
  createPool,
  definePlugin,
  defineSchema,
  enqueue,
  migrate,
  PurgerEventEmitter,
  silentLogger,
  startWorker,
  type PurgerConfig,
} from "@purger/core/host";
import { testEntry } from "@purger/core/testing";
import { benchDatabase } from "./database.js";

const ITEMS = Number(process.env.P4_ITEMS ?? 200);
const GAP_MS = Number(process.env.P4_GAP_MS ?? 25);
const WARM_UP = 10;

const marker = definePlugin<Record<string, never>>({
  name: "bench-bin-latency",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", additionalProperties: false }),
  bin: {
    mark: {
      schema: defineSchema({ type: "object", properties: { n: { type: "integer" } }, required: ["n"], additionalProperties: false }),
      async handle(ctx, payload: { n: number }) {
        await ctx.pool.query("INSERT INTO p4_marks (n) VALUES ($1)", [payload.n]);
        return { processed: 1 };
      },
    },
  },
});

async function main(): Promise<void> {
  const database = await benchDatabase("p4");
  const stopPg = database.stop;
  // The web server's pool and the worker's are apart, as in production.
  const app = createPool({ url: database.url, max: 2 });
  const pool = createPool({ url: database.url, max: 6 });

  const entry = testEntry(marker, { pool, id: "latency", options: {} });
  const kinds = binKinds([entry]);
  await migrate(pool, {
    workerSchema: "purger_worker",
    kinds: kinds.map((k) => ({ kind: k.kind, entry: entry.id, handler: k.handlerName })),
  });
  await pool.query("CREATE TABLE p4_marks (n int PRIMARY KEY)");
  const config: PurgerConfig = {
    file: null,
    dir: process.cwd(),
    database: { url: null },
    worker: { concurrency: 4, shutdownTimeoutMs: 5_000, schema: "purger_worker" },
    runs: { keepMs: 86_400_000 },
    timezone: "UTC",
    http: null,
    entries: [entry],
  };
  const events = new PurgerEventEmitter();
  const done = new Map<string, () => void>();
  events.on("bin:item:done", (e) => done.get(e.itemId)?.());
  const worker = await startWorker({ config, pool, log: silentLogger, events });

  const latencies: number[] = [];
  try {
    for (let n = 0; n < WARM_UP + ITEMS; n += 1) {
      await sleep(GAP_MS);
      let resolve!: () => void;
      const handled = new Promise<void>((r) => (resolve = r));
      const started = performance.now();
      // The id is known only once enqueue returns; an item done before that is caught by the check below.
      const id = await enqueue(app, "latency.mark", { n }, kinds);
      done.set(id, resolve);
      const { rows } = await app.query<{ status: string }>("SELECT status FROM purger.bin WHERE id = $1", [id]);
      if (rows[0]?.status !== "done") await handled;
      const ms = performance.now() - started;
      done.delete(id);
      if (n >= WARM_UP) latencies.push(ms);
    }
    const { rows } = await app.query<{ n: number }>("SELECT count(*)::int AS n FROM p4_marks");
    if (rows[0]!.n !== WARM_UP + ITEMS) throw new Error(`${rows[0]!.n} items handled, expected ${WARM_UP + ITEMS}`);
  } finally {
    await worker.stop();
    await app.end();
    await pool.end();
    await stopPg();
  }

  latencies.sort((a, b) => a - b);
  const p50 = percentile(latencies, 0.5);
  const p99 = percentile(latencies, 0.99);
  const max = latencies.at(-1)!;
  process.stderr.write(
    `${ITEMS} items, one at a time, ${GAP_MS} ms apart: min ${latencies[0]!.toFixed(1)} ms, p90 ${percentile(latencies, 0.9).toFixed(1)} ms, max ${max.toFixed(1)} ms\n`,
  );
  console.log(
    `P4 bin latency enqueue→handled (${ITEMS} items, idle worker): p50 ${p50.toFixed(1)} ms (target ≤ 50, ratio ${(p50 / 50).toFixed(2)}) ${p50 <= 50 ? "PASS" : "FAIL"}, ` +
      `p99 ${p99.toFixed(1)} ms (target ≤ 250, ratio ${(p99 / 250).toFixed(2)}) ${p99 <= 250 ? "PASS" : "FAIL"}`,
  );
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

await main();
