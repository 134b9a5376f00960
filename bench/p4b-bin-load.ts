/**
 * P4b (bench/README.md): bin latency under load. 500 items/s are enqueued for 60 s (each
 * in its own committed transaction, from the web server's pool) while a
 * retention entry scheduled `every 5s` deletes in batches the rows a producer
 * keeps adding past its cutoff. Reports enqueue → handled latency (p50, p99),
 * the deepest the bin got, and how late each scheduled run of the entry
 * started against its schedule. Targets: p50 ≤ 50 ms, p99 ≤ 250 ms, bin
 * depth bounded, the schedule kept.
 *
 *   pnpm exec tsx bench/p4b-bin-load.ts                 # embedded PostgreSQL under .purger/bench-pg
 *   pnpm exec tsx bench/p4b-bin-load.ts --quick         # 10 s instead of 60 s
 *   P4B_RATE=500 P4B_SECONDS=60 P4B_CONCURRENCY=4 PURGER_BENCH_PG_URL=postgres://… pnpm exec tsx bench/p4b-bin-load.ts
 *
 * "Schedule kept" here: every scheduled run starts within one interval of
 * its scheduled time (a delay below 5 s), however deep the bin.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  binKinds,
  createPool,
  workerConnections,
  definePlugin,
  defineSchema,
  enqueue,
  migrate,
  PurgerEventEmitter,
  silentLogger,
  startWorker,
  type EntryConfig,
  type PurgerConfig,
} from "@purger/core/host";
import { testEntry } from "@purger/core/testing";
import { benchDatabase } from "./database.js";
import retention from "@purger/plugin-retention";

const QUICK = process.argv.includes("--quick") || process.env.P4B_QUICK === "1";
const RATE = Number(process.env.P4B_RATE ?? 500);
const SECONDS = Number(process.env.P4B_SECONDS ?? (QUICK ? 10 : 60));
const CONCURRENCY = Number(process.env.P4B_CONCURRENCY ?? 4);
const EVERY_MS = 5_000;
/** Rows the producer adds past the cutoff each second, so every run of the entry has batches to delete. */
const ROWS_PER_S = 5_000;
const TICK_MS = 20;

const marker = definePlugin<Record<string, never>>({
  name: "bench-bin-load",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", additionalProperties: false }),
  bin: {
    mark: {
      schema: defineSchema({ type: "object", properties: { n: { type: "integer" } }, required: ["n"], additionalProperties: false }),
      async handle(ctx, payload: { n: number }) {
        await ctx.pool.query("INSERT INTO p4b_marks (n) VALUES ($1)", [payload.n]);
        return { processed: 1 };
      },
    },
  },
});

async function main(): Promise<void> {
  const database = await benchDatabase("p4b");
  const stopPg = database.stop;
  // The web server's pool, the producer's and the worker's are apart, as in production.
  const app = createPool({ url: database.url, max: 10 });
  const producer = createPool({ url: database.url, max: 1 });
  const pool = createPool({ url: database.url, max: Math.max(10, workerConnections(CONCURRENCY)) });

  const binEntry = testEntry(marker, { pool, id: "load", options: {} });
  const sweep: EntryConfig = {
    ...testEntry(retention, {
      pool,
      id: "sweep",
      options: { table: "p4b_events", column: "created_at" },
      retention: "1d",
      batchSize: 1000,
    }),
    schedule: { kind: "every", everyMs: EVERY_MS },
  };
  const kinds = binKinds([binEntry]);
  await migrate(pool, {
    workerSchema: "purger_worker",
    kinds: kinds.map((k) => ({ kind: k.kind, entry: binEntry.id, handler: k.handlerName })),
  });
  await pool.query(`
    CREATE TABLE p4b_marks (n int PRIMARY KEY);
    CREATE TABLE p4b_events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL);
    CREATE INDEX ON p4b_events (created_at);
  `);
  const config: PurgerConfig = {
    file: null,
    dir: process.cwd(),
    database: { url: null },
    worker: { concurrency: CONCURRENCY, shutdownTimeoutMs: 10_000, schema: "purger_worker" },
    runs: { keepMs: 86_400_000 },
    timezone: "UTC",
    http: null,
    entries: [binEntry, sweep],
  };

  const events = new PurgerEventEmitter();
  const handledAt = new Map<string, number>();
  events.on("bin:item:done", (e) => handledAt.set(e.itemId, performance.now()));
  let scheduledAt: number | null = null;
  const startDelays: number[] = [];
  let deleted = 0;
  events.on("entry:schedule", (e) => {
    if (e.entry === "sweep") scheduledAt = e.at.getTime();
  });
  events.on("run:start", (e) => {
    if (e.entry !== "sweep" || e.trigger !== "schedule" || scheduledAt === null) return;
    startDelays.push(Date.now() - scheduledAt);
    scheduledAt = null;
  });
  events.on("run:finish", (e) => {
    if (e.entry === "sweep") deleted += e.processed;
  });
  const worker = await startWorker({ config, pool, log: silentLogger, events });

  const enqueuedAt = new Map<string, number>();
  let maxDepth = 0;
  let running = true;
  const depthProbe = (async () => {
    while (running) {
      const { rows } = await app.query<{ n: number }>("SELECT count(*)::int AS n FROM purger.bin WHERE status = 'pending'");
      maxDepth = Math.max(maxDepth, rows[0]!.n);
      await sleep(250);
    }
  })();
  const produce = (async () => {
    while (running) {
      await producer.query("INSERT INTO p4b_events (created_at) SELECT now() - interval '2 days' FROM generate_series(1, $1)", [
        ROWS_PER_S / 4,
      ]);
      await sleep(250);
    }
  })();

  const total = RATE * SECONDS;
  const perTick = (RATE * TICK_MS) / 1000;
  const t0 = performance.now();
  let n = 0;
  try {
    const inFlight = new Set<Promise<void>>();
    while (n < total) {
      // Keep to the rate against the clock, not per tick, so a slow tick is caught up.
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE) + perTick);
      for (; n < due; n += 1) {
        const value = n;
        const p = (async () => {
          const started = performance.now();
          const id = await enqueue(app, "load.mark", { n: value }, kinds);
          enqueuedAt.set(id, started);
        })();
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      await sleep(TICK_MS);
    }
    await Promise.all(inFlight);
    const enqueueSeconds = (performance.now() - t0) / 1000;
    const deadline = Date.now() + 120_000;
    while (handledAt.size < total && Date.now() < deadline) await sleep(50);
    running = false;
    await Promise.all([depthProbe, produce]);
    const { rows } = await app.query<{ n: number }>("SELECT count(*)::int AS n FROM p4b_marks");
    if (rows[0]!.n !== total) throw new Error(`${rows[0]!.n} items handled, expected ${total}`);

    const latencies = [...enqueuedAt].map(([id, at]) => handledAt.get(id)! - at).sort((a, b) => a - b);
    const p50 = percentile(latencies, 0.5);
    const p99 = percentile(latencies, 0.99);
    const worstDelay = Math.max(0, ...startDelays);
    process.stderr.write(
      `${total} items in ${enqueueSeconds.toFixed(1)} s (${(total / enqueueSeconds).toFixed(0)}/s), concurrency ${CONCURRENCY}: ` +
        `latency p90 ${percentile(latencies, 0.9).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms; ` +
        `entry: ${startDelays.length} scheduled runs, start delays ${startDelays.map((d) => `${d} ms`).join(", ")}; ${deleted} rows deleted\n`,
    );
    const kept = startDelays.length > 0 && worstDelay < EVERY_MS;
    console.log(
      `P4b bin latency under load (${RATE}/s for ${SECONDS} s beside a retention entry every ${EVERY_MS / 1000}s): ` +
        `p50 ${p50.toFixed(1)} ms (target ≤ 50, ratio ${(p50 / 50).toFixed(2)}) ${p50 <= 50 ? "PASS" : "FAIL"}, ` +
        `p99 ${p99.toFixed(1)} ms (target ≤ 250, ratio ${(p99 / 250).toFixed(2)}) ${p99 <= 250 ? "PASS" : "FAIL"}, ` +
        `max bin depth ${maxDepth}, entry start delay max ${worstDelay} ms over ${startDelays.length} runs ${kept ? "PASS" : "FAIL"}`,
    );
  } finally {
    running = false;
    await worker.stop();
    await Promise.all([app.end(), producer.end(), pool.end()]);
    await stopPg();
  }
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

await main();
