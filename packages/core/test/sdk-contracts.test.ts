/**
 * What the SDK promises a plugin author about its hooks, checked through the
 * real worker and bin: `release(state)` pairs with a `prepare` that succeeded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePlugin, defineSchema } from "../src/host.js";
import { createTestDatabase, runBin, type TestDatabase } from "../src/testing.js";

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
