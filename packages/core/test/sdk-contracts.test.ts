/**
 * What the SDK promises a plugin author about its hooks, checked through the
 * real worker and bin: `release(state)` pairs with a `prepare` that succeeded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePlugin, defineSchema, migrate, PurgerEventEmitter, runEntry, type RunStartEvent } from "../src/host.js";
import { createTestDatabase, runBin, testEntry, type TestDatabase } from "../src/testing.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("sdk-contracts");
});
afterAll(async () => {
  await db?.drop();
});

describe("release(state)", () => {
  it("is not called for a bin entry whose prepare failed (it has nothing to release)", async () => {
    const released: unknown[] = [];
    const plugin = definePlugin<Record<string, never>, { handle: number }>({
      name: "prepare-fails",
      version: "1.0.0",
      usesRetention: false,
      options: defineSchema({ type: "object", additionalProperties: false }),
      async prepare() {
        throw new Error("the target is unreachable");
      },
      async release(state) {
        released.push(state);
      },
      bin: {
        ping: {
          schema: defineSchema({ type: "object", additionalProperties: false }),
          async handle() {
            return { processed: 1 };
          },
        },
      },
    });
    const items = await runBin(plugin, {
      pool: db.pool,
      id: "fails",
      options: {},
      items: [{ handler: "ping", payload: {} }],
      maxAttempts: 1,
    });
    expect(items).toMatchObject([{ status: "failed", lastError: "the target is unreachable" }]);
    expect(released).toEqual([]);
  });
});

describe("run:start", () => {
  it("is emitted by every slice of a run, also when the slices run back to back in one call (once)", async () => {
    await migrate(db.pool, { workerSchema: "purger_worker" });
    let left = 4;
    // Each batch outlasts the entry's 1ms timeout, so every batch is a slice of its own.
    const slow = definePlugin({
      name: "slow-batches",
      version: "1.0.0",
      usesRetention: false,
      options: defineSchema({ type: "object", additionalProperties: false }),
      async batch(ctx) {
        await ctx.client.query("SELECT pg_sleep(0.005)");
        left -= 1;
        return { processed: 1, cursor: left, done: left === 0 };
      },
    });
    const events = new PurgerEventEmitter();
    const starts: RunStartEvent[] = [];
    const sliceEnds: number[] = [];
    events.on("run:start", (e) => starts.push(e));
    events.on("run:slice:end", (e) => sliceEnds.push(e.done));
    const entry = testEntry(slow, { pool: db.pool, id: "slices", options: {}, timeout: "1ms" });
    const result = await runEntry({ pool: db.pool, entry, trigger: "manual", onLocked: "fail", events });

    expect(result).toMatchObject({ status: "succeeded", processed: 4, batches: 4 });
    expect(sliceEnds).toEqual([1, 2, 3]);
    expect(starts.map((e) => ({ runId: e.runId, resumed: e.resumed, done: e.done }))).toEqual([
      { runId: result.runId, resumed: false, done: 0 },
      { runId: result.runId, resumed: true, done: 1 },
      { runId: result.runId, resumed: true, done: 2 },
      { runId: result.runId, resumed: true, done: 3 },
    ]);
  });
});
