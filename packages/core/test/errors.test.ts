/**
 * Error identity across copies of core: a plugin that resolves its own copy of
 * @purger/core throws PurgerErrors of another class object. They must still
 * count as purger's errors (exit codes, permanent bin failures), so identity is
 * a brand, never `instanceof` on one copy's class.
 */
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePlugin, defineSchema, exitCodeOf, isPurgerError, PurgerError } from "../src/host.js";
import { createTestDatabase, runBin, type TestDatabase } from "../src/testing.js";

type ErrorsModule = typeof import("../src/errors.js");

let copyDir: string;
let copy: ErrorsModule;
let db: TestDatabase;

beforeAll(async () => {
  // A second copy of the errors module, as a plugin with its own node_modules/@purger/core would load it.
  copyDir = await mkdtemp(path.join(os.tmpdir(), "purger-errors-copy-"));
  const file = path.join(copyDir, "errors.ts");
  await copyFile(fileURLToPath(new URL("../src/errors.ts", import.meta.url)), file);
  copy = (await import(pathToFileURL(file).href)) as ErrorsModule;
  db = await createTestDatabase("errors");
});

afterAll(async () => {
  await db?.drop();
  await rm(copyDir, { recursive: true, force: true });
});

describe("a PurgerError made by a second copy of core", () => {
  it("is another class, yet recognised: isPurgerError, its code, and exit 2 for CONFIG", () => {
    const error = new copy.PurgerError("CONFIG", "purger.yaml:1:1 broken", { hint: "fix it" });
    expect(copy.PurgerError).not.toBe(PurgerError);
    expect(isPurgerError(error)).toBe(true);
    expect(isPurgerError(error, "CONFIG")).toBe(true);
    expect(isPurgerError(error, "PAYLOAD")).toBe(false);
    expect(error instanceof PurgerError).toBe(true);
    expect(exitCodeOf(error)).toBe(2);
    expect(exitCodeOf(new copy.PurgerError("INTERRUPTED", "stopped"))).toBe(130);
    // And the other way round: the copy recognises this copy's errors.
    expect(copy.exitCodeOf(new PurgerError("PLUGIN", "bad plugin"))).toBe(2);
  });

  it("an ordinary error, or one that only looks alike, is not one", () => {
    const lookalike = Object.assign(new Error("x"), { name: "PurgerError", code: "CONFIG" });
    expect(isPurgerError(lookalike)).toBe(false);
    expect(exitCodeOf(lookalike)).toBe(1);
    expect(isPurgerError(null)).toBe(false);
    expect(isPurgerError("CONFIG")).toBe(false);
  });

  it("a bin handler throwing its PAYLOAD error fails the item for good at its first attempt (no retries)", async () => {
    const plugin = definePlugin<Record<string, never>>({
      name: "test-second-core",
      version: "1.0.0",
      usesRetention: false,
      options: defineSchema({ type: "object", additionalProperties: false }),
      bin: {
        refuse: {
          schema: defineSchema({ type: "object", properties: { id: { type: "integer" } }, required: ["id"], additionalProperties: false }),
          handle(_ctx, payload: { id: number }) {
            throw new copy.PurgerError("PAYLOAD", `item ${payload.id} names nothing this plugin knows`);
          },
        },
      },
    });
    const items = await runBin(plugin, {
      pool: db.pool,
      id: "copy",
      options: {},
      items: [{ handler: "refuse", payload: { id: 7 } }],
      maxAttempts: 3,
    });
    expect(items.map((item) => [item.status, item.attempts, item.lastError])).toEqual([
      ["failed", 1, "item 7 names nothing this plugin knows"],
    ]);
  });
});
