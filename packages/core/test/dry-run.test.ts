/**
 * The two dry runs, against a real PostgreSQL, on a table with a DELETE
 * trigger that writes an audit row: the default one runs the real batches and
 * rolls each back (the trigger fires, row locks are held during the batch);
 * the count-only one reads through the plugin's `count` and nothing else.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePlugin, defineSchema, migrate, PurgerError, runEntry } from "../src/host.js";
import { createTestDatabase, runPlugin, testEntry } from "../src/testing.js";

interface Options {
  table: string;
}

const sweep = definePlugin<Options>({
  name: "test-dry-run",
  version: "1.0.0",
  usesRetention: true,
  options: defineSchema({ type: "object", properties: { table: { type: "string" } }, required: ["table"], additionalProperties: false }),
  async batch(ctx) {
    const { rows } = await ctx.client.query<{ id: number }>(
      `WITH b AS (SELECT id FROM ${ctx.options.table} WHERE ts < $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
       DELETE FROM ${ctx.options.table} t USING b WHERE t.id = b.id RETURNING t.id`,
      [ctx.cutoff, Number(ctx.cursor ?? 0), ctx.batchSize],
    );
    const last = rows.reduce((m, r) => Math.max(m, r.id), Number(ctx.cursor ?? 0));
    return { processed: rows.length, cursor: last, done: rows.length < ctx.batchSize };
  },
  async count(ctx, limit) {
    const { rows } = await ctx.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${ctx.options.table} WHERE ts < $1 LIMIT $2) s`,
      [ctx.cutoff, limit],
    );
    return rows[0]!.n;
  },
});

/** Advisory lock the trigger takes after writing its audit row: while the test holds it, a firing trigger waits. */
const TRIGGER_GATE = 4242;

let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  db = await createTestDatabase("dry-run");
  await migrate(db.pool, { workerSchema: "purger_worker" });
  await db.pool.query(`
    CREATE TABLE audited (id serial PRIMARY KEY, ts timestamptz NOT NULL);
    INSERT INTO audited (ts) SELECT now() - interval '10 days' FROM generate_series(1, 12);
    INSERT INTO audited (ts) SELECT now() - interval '1 hour' FROM generate_series(1, 3);
    CREATE TABLE audit_log (id int NOT NULL);
    CREATE FUNCTION audit_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO audit_log (id) VALUES (OLD.id);
      PERFORM pg_advisory_xact_lock(${TRIGGER_GATE});
      RETURN OLD;
    END $$;
    CREATE TRIGGER audited_delete AFTER DELETE ON audited FOR EACH ROW EXECUTE FUNCTION audit_delete();
  `);
});
afterAll(async () => {
  await db?.drop();
});

async function rowCount(table: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}

/** Sessions of this database waiting for an advisory lock (the gate). */
async function waitingOnGate(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  return rows[0]!.n;
}

describe("dry runs", () => {
  it("--dry-run runs the real batches: the DELETE trigger fires and the rows are locked during the batch, then all is rolled back", async () => {
    const gate = await db.pool.connect();
    try {
      await gate.query("SELECT pg_advisory_lock($1)", [TRIGGER_GATE]);
      const run = runPlugin(sweep, { pool: db.pool, id: "rollback", options: { table: "audited" }, retention: "7d", dryRun: true });
      // The trigger fired inside the batch and now waits at the gate: the batch is open.
      for (let i = 0; (await waitingOnGate()) === 0; i++) {
        if (i > 500) throw new Error("the dry run's batch never reached the trigger");
        await sleep(20);
      }
      await expect(db.pool.query("SELECT id FROM audited WHERE id = 1 FOR UPDATE NOWAIT")).rejects.toMatchObject({ code: "55P03" });
      await gate.query("SELECT pg_advisory_unlock($1)", [TRIGGER_GATE]);
      const result = await run;
      expect(result).toMatchObject({ status: "succeeded", dryRun: true, dryRunMode: "rollback", processed: 12, batches: 1 });
    } finally {
      await gate.query("SELECT pg_advisory_unlock_all()");
      gate.release();
    }
    expect(await rowCount("audited")).toBe(15);
    expect(await rowCount("audit_log")).toBe(0);
  });

  it("count-only: the plugin's count alone, so no row lock is taken and no trigger fires, even while every row is locked elsewhere", async () => {
    const holder = await db.pool.connect();
    try {
      await holder.query("SELECT pg_advisory_lock($1)", [TRIGGER_GATE]);
      await holder.query("BEGIN");
      await holder.query("SELECT id FROM audited FOR UPDATE");
      const entry = testEntry(sweep, { pool: db.pool, id: "count-only", options: { table: "audited" }, retention: "7d" });
      const result = await runEntry({ pool: db.pool, entry, trigger: "manual", dryRun: "count", onLocked: "fail" });
      expect(result).toMatchObject({ status: "succeeded", dryRun: true, dryRunMode: "count", processed: 12, batches: 0 });
      expect(await waitingOnGate()).toBe(0);
      await holder.query("ROLLBACK");
    } finally {
      await holder.query("SELECT pg_advisory_unlock_all()");
      holder.release();
    }
    expect(await rowCount("audited")).toBe(15);
    expect(await rowCount("audit_log")).toBe(0);
    const { rows } = await db.pool.query(
      "SELECT dry_run, processed::int AS processed, batches FROM purger.runs WHERE entry = 'count-only'",
    );
    expect(rows).toEqual([{ dry_run: true, processed: 12, batches: 0 }]);
  });

  it("count-only with a plugin that cannot count is a usage error that names the way out", async () => {
    const { count: _count, ...rest } = sweep;
    const uncountable = definePlugin<Options>({ ...rest, name: "test-uncountable" });
    const entry = testEntry(uncountable, { pool: db.pool, id: "uncountable", options: { table: "audited" }, retention: "7d" });
    const error = await runEntry({ pool: db.pool, entry, trigger: "manual", dryRun: "count", onLocked: "fail" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PurgerError);
    expect(error).toMatchObject({
      code: "USAGE",
      message: 'plugin test-uncountable cannot count what qualifies, so entry "uncountable" has no count-only dry run',
      hint: "use --dry-run: it runs the batches and rolls each back",
    });
  });
});
