/**
 * P1 (bench/README.md): retention throughput. 1 M rows, ~50 % past the cutoff, indexed
 * timestamp; batch 1 000 and 10 000. The reference is a hand-written
 * node-postgres loop of the same batched CTE delete (keyset on (ts, id),
 * `FOR UPDATE SKIP LOCKED`, `DELETE … USING`), one transaction per batch, as
 * prepared statements. purger's time is the run's `durationMs` through the
 * real engine (estimate, run record, a checkpoint in every batch's
 * transaction). Also a ULID-keyed table (the primary key is the clock).
 *
 *   pnpm exec tsx bench/p1-retention.ts            # embedded PostgreSQL under .purger/bench-p1-pg (its own: other benches stop theirs)
 *   PURGER_BENCH_PG_URL=postgres://… pnpm exec tsx bench/p1-retention.ts
 *   P1_ROWS=200000 P1_REPEAT=1 …                       # smaller / quicker
 *   P1_CASES="ulid batch=10000" …                      # some cases only (comma-separated names)
 *
 * Each measurement starts from the same data: the table is rebuilt from a
 * source copy, vacuumed and analysed, then CHECKPOINT; reference and purger
 * alternate (which goes first too), and the best of P1_REPEAT (default 3) runs of
 * each is kept: the machine is shared and noisy.
 */
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { createPool, startEmbeddedPostgres, type AnyPlugin } from "@purger/core/host";
import { runPlugin } from "@purger/core/testing";
import retention from "@purger/plugin-retention";

const ROWS = Number(process.env.P1_ROWS ?? 1_000_000);
const REPEAT = Number(process.env.P1_REPEAT ?? 3);
const NOW = new Date("2026-03-01T00:00:00.000Z");
const DAY = 86_400_000;
/** Rows span 10 days before NOW; a 5-day retention puts half of them past the cutoff. */
const SPAN = 10 * DAY;
const CUTOFF = new Date(NOW.getTime() - 5 * DAY);

/** Time spent inside batch statements, to tell the statement's cost from the loop's (printed per run). */
let statementMs = 0;
const timedRetention: AnyPlugin = {
  ...retention,
  batch: async (ctx) => {
    const t0 = performance.now();
    try {
      return await retention.batch!(ctx);
    } finally {
      statementMs += performance.now() - t0;
    }
  },
};

interface Case {
  name: string;
  table: string;
  batchSize: number;
  options: Record<string, unknown>;
  reference: (client: pg.PoolClient, batchSize: number) => Promise<number>;
}

async function main(): Promise<void> {
  let stop = async () => {};
  let url = process.env.PURGER_BENCH_PG_URL;
  if (!url) {
    const server = await startEmbeddedPostgres({ dir: fileURLToPath(new URL("../.purger/bench-p1-pg", import.meta.url)) });
    url = server.url;
    stop = () => server.stop();
  }
  const admin = createPool({ url, max: 1 });
  await admin.query("DROP DATABASE IF EXISTS purger_bench_p1 WITH (FORCE)");
  await admin.query("CREATE DATABASE purger_bench_p1");
  await admin.end();
  const benchUrl = new URL(url);
  benchUrl.pathname = "/purger_bench_p1";
  const pool = createPool({ url: benchUrl.toString(), max: 4 });

  try {
    const setupStart = performance.now();
    await seed(pool);
    log(`seeded ${ROWS} rows ×2 tables in ${seconds(performance.now() - setupStart)}`);

    const cases: Case[] = [1_000, 10_000].map((batchSize) => ({
      name: `batch=${batchSize}`,
      table: "p1_events",
      batchSize,
      options: { table: "p1_events", column: "created_at" },
      reference: referenceTimestamp,
    }));
    cases.push(
      ...[1_000, 10_000].map((batchSize) => ({
        name: `ulid batch=${batchSize}`,
        table: "p1_ulid",
        batchSize,
        options: { table: "p1_ulid", column: "id", columnFormat: "ulid" },
        reference: referenceUlid,
      })),
    );

    const only = process.env.P1_CASES;
    const summary: string[] = [];
    for (const c of cases.filter((x) => only === undefined || only.split(",").includes(x.name))) {
      let best = { purger: Infinity, reference: Infinity };
      let counts = { purger: 0, reference: 0 };
      for (let i = 0; i < REPEAT; i += 1) {
        // Alternate which goes first, so a noisy neighbour or a warm cache favours neither.
        const order = i % 2 === 0 ? (["reference", "purger"] as const) : (["purger", "reference"] as const);
        const times = { reference: 0, purger: 0 };
        const inStatements = { reference: 0, purger: 0 };
        for (const which of order) {
          await reset(pool, c.table);
          statementMs = 0;
          if (which === "reference") {
            const client = await pool.connect();
            const t0 = performance.now();
            counts.reference = await c.reference(client, c.batchSize).finally(() => client.release());
            times.reference = performance.now() - t0;
            inStatements.reference = statementMs;
          } else {
            const result = await runPlugin(timedRetention, {
              pool,
              id: `p1-${c.table}-${c.batchSize}`,
              options: c.options,
              retention: "5d",
              batchSize: c.batchSize,
              now: NOW,
            });
            if (result.status !== "succeeded") throw new Error(`purger run ${result.status}: ${result.error ?? ""}`);
            counts.purger = result.processed;
            times.purger = result.durationMs;
            inStatements.purger = statementMs;
          }
        }
        best = { reference: Math.min(best.reference, times.reference), purger: Math.min(best.purger, times.purger) };
        const split = (which: "reference" | "purger") =>
          `${seconds(times[which])} (${seconds(inStatements[which])} in batch statements, ${seconds(times[which] - inStatements[which])} around them)`;
        log(`  ${c.name} #${i + 1}: reference ${split("reference")}, purger ${split("purger")}`);
      }
      if (counts.purger !== counts.reference)
        throw new Error(`${c.name}: purger deleted ${counts.purger} rows, the reference ${counts.reference}`);
      const ratio = best.reference / best.purger;
      const line = `P1 ${c.name} ratio=${ratio.toFixed(2)} (purger ${seconds(best.purger)}, reference ${seconds(best.reference)}, ${counts.purger} rows, ${Math.round(counts.purger / (best.purger / 1000))} rows/s)`;
      log(line);
      summary.push(`${c.name} ${ratio.toFixed(2)}`);
      best = { purger: Infinity, reference: Infinity };
      counts = { purger: 0, reference: 0 };
    }
    console.log(`P1 retention ratios (target ≥ 0.95): ${summary.join(", ")}`);
  } finally {
    await pool.end();
    await stop();
  }
}

/** Source tables, built once: timestamps and ULIDs spread evenly over SPAN, ids in time order. */
async function seed(pool: pg.Pool): Promise<void> {
  await pool.query(`CREATE TABLE p1_events_src (id bigint, created_at timestamptz, payload text)`);
  await pool.query(
    `INSERT INTO p1_events_src
       SELECT g, $1::timestamptz - make_interval(secs => ($2::float8 - g * $2::float8 / $3) / 1000), md5(g::text)
         FROM generate_series(1, $3::int) g`,
    [NOW.toISOString(), SPAN, ROWS],
  );
  // A ULID stored as uuid: 48 bits of milliseconds, then 80 random bits.
  await pool.query(`
    CREATE TABLE p1_ulid_src AS
      SELECT (lpad(to_hex((extract(epoch FROM created_at) * 1000)::bigint), 12, '0') || substr(md5(random()::text), 1, 20))::uuid AS id, payload
        FROM p1_events_src`);
}

/** Rebuild the table from its source (same data every time), vacuum, analyse, checkpoint. */
async function reset(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS ${table}`);
  await pool.query(`DELETE FROM purger.runs WHERE true`).catch(() => {});
  await pool.query(`CREATE TABLE ${table} AS SELECT * FROM ${table}_src`);
  await pool.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
  if (table === "p1_events") await pool.query(`CREATE INDEX ON ${table} (created_at)`);
  await pool.query(`VACUUM ANALYZE ${table}`);
  await pool.query(`CHECKPOINT`);
}

/** The hand-written loop: the same batched CTE, one transaction per batch, cursor = the batch's last (created_at, id). */
async function referenceTimestamp(client: pg.PoolClient, batchSize: number): Promise<number> {
  const batch = (withCursor: boolean) => `
    WITH batch AS (
      SELECT id, created_at FROM p1_events
       WHERE created_at < $1 ${withCursor ? "AND (created_at, id) > ($3::timestamptz, $4::bigint)" : ""}
       ORDER BY created_at, id LIMIT $2
         FOR UPDATE SKIP LOCKED
    ), deleted AS (
      DELETE FROM p1_events t USING batch b WHERE t.id = b.id RETURNING 1
    )
    SELECT (SELECT count(*) FROM deleted)::int AS n,
           (SELECT ARRAY[created_at::text, id::text] FROM batch ORDER BY created_at DESC, id DESC LIMIT 1) AS last`;
  const first = { name: "p1_ref_first", text: batch(false) };
  const next = { name: "p1_ref_next", text: batch(true) };
  let cursor: string[] | null = null;
  let total = 0;
  for (;;) {
    await client.query("BEGIN");
    const query: pg.QueryConfig = cursor ? { ...next, values: [CUTOFF, batchSize, ...cursor] } : { ...first, values: [CUTOFF, batchSize] };
    const t0 = performance.now();
    const { rows } = await client.query<{ n: number; last: string[] | null }>(query);
    statementMs += performance.now() - t0;
    await client.query("COMMIT");
    const row = rows[0];
    if (!row) throw new Error("the batch statement returned no row");
    total += row.n;
    cursor = row.last ?? cursor;
    if (row.n < batchSize) return total;
  }
}

/** The same for the ULID-keyed table: the primary key is the clock, `id < boundary` and keyset on id. */
async function referenceUlid(client: pg.PoolClient, batchSize: number): Promise<number> {
  const hex = CUTOFF.getTime().toString(16).padStart(12, "0");
  const boundary = `${hex.slice(0, 8)}-${hex.slice(8)}-0000-0000-000000000000`;
  const batch = (withCursor: boolean) => `
    WITH batch AS (
      SELECT id FROM p1_ulid WHERE id < $1::uuid ${withCursor ? "AND id > $3::uuid" : ""}
       ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
    ), deleted AS (
      DELETE FROM p1_ulid t USING batch b WHERE t.id = b.id RETURNING 1
    )
    SELECT (SELECT count(*) FROM deleted)::int AS n, (SELECT id::text FROM batch ORDER BY id DESC LIMIT 1) AS last`;
  const first = { name: "p1_ref_ulid_first", text: batch(false) };
  const next = { name: "p1_ref_ulid_next", text: batch(true) };
  let cursor: string | null = null;
  let total = 0;
  for (;;) {
    await client.query("BEGIN");
    const query: pg.QueryConfig = cursor ? { ...next, values: [boundary, batchSize, cursor] } : { ...first, values: [boundary, batchSize] };
    const t0 = performance.now();
    const { rows } = await client.query<{ n: number; last: string | null }>(query);
    statementMs += performance.now() - t0;
    await client.query("COMMIT");
    const row = rows[0];
    if (!row) throw new Error("the batch statement returned no row");
    total += row.n;
    cursor = row.last ?? cursor;
    if (row.n < batchSize) return total;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`;
}

function log(line: string): void {
  console.error(line);
}

await main();
