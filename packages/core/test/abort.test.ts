/**
 * The rule for aborts: a batch that throws because the run's signal fired
 * (a worker shutting down) has not failed. Its transaction is rolled back,
 * the run stays resumable from its checkpoint and no attempt is spent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePlugin, defineSchema, migrate, runEntry } from "../src/host.js";
import { createTestDatabase, testEntry, type TestDatabase } from "../src/testing.js";

let db: TestDatabase;
let batchesSeen = 0;
const controller = { current: new AbortController() };

/** Deletes 2 rows a batch, by id; on its 2nd batch it aborts the run's signal and throws like a cancelled external call. */
const throwsOnAbort = definePlugin<{ table: string }>({
  name: "throws-on-abort",
  version: "1.0.0",
  usesRetention: false,
  options: defineSchema({ type: "object", properties: { table: { type: "string" } }, required: ["table"], additionalProperties: false }),
  async batch(ctx) {
    batchesSeen += 1;
    const { rows } = await ctx.client.query<{ id: number }>(
      `DELETE FROM ${ctx.options.table} WHERE id IN (SELECT id FROM ${ctx.options.table} ORDER BY id LIMIT 2) RETURNING id`,
    );
    if (batchesSeen === 2) {
      controller.current.abort();
      ctx.signal.throwIfAborted();
    }
    return { processed: rows.length, cursor: null };
  },
});

beforeAll(async () => {
  db = await createTestDatabase("abort");
  await migrate(db.pool, { workerSchema: "purger_worker" });
  await db.pool.query("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 6)");
});
afterAll(async () => {
  await db?.drop();
});

describe("a batch that throws because the run's signal fired", () => {
  it("leaves the run suspended (not failed) with the thrown batch rolled back, and the next slice finishes it", async () => {
    const entry = testEntry(throwsOnAbort, { pool: db.pool, id: "abort", options: { table: "items" }, batchSize: 2 });
    const first = await runEntry({
      pool: db.pool,
      entry,
      trigger: "schedule",
      sliced: true,
      onLocked: "skip",
      signal: controller.current.signal,
    });
    expect(first).toMatchObject({ status: "suspended", processed: 2, more: true });
    const { rows: left } = await db.pool.query<{ id: number }>("SELECT id FROM items ORDER BY id");
    expect(left.map((r) => r.id)).toEqual([3, 4, 5, 6]);
    const { rows: runs } = await db.pool.query("SELECT status, processed::int AS processed FROM purger.runs WHERE entry = 'abort'");
    expect(runs).toEqual([{ status: "running", processed: 2 }]);

    const second = await runEntry({ pool: db.pool, entry, trigger: "schedule", sliced: true, onLocked: "skip" });
    expect(second).toMatchObject({ status: "succeeded", processed: 6, runId: first.runId });
    expect((await db.pool.query("SELECT count(*)::int AS n FROM items")).rows[0]).toEqual({ n: 0 });
  });
});
