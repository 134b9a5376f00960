/**
 * A third-party plugin tested the way its author would: `@purger/core/testing`
 * runs it through purger's real engine against a real PostgreSQL.
 */
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, runBin, runPlugin, type TestDatabase } from "@purger/core/testing";
import files from "../src/index.js";

const NOW = new Date("2026-06-01T12:00:00Z");
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** A directory with files of given ages (days before NOW). */
function directory(filesByAge: Record<string, number>): string {
  const dir = mkdtempSync(join(tmpdir(), "purger-files-"));
  for (const [name, days] of Object.entries(filesByAge)) {
    const path = join(dir, name);
    writeFileSync(path, name);
    const at = new Date(NOW.getTime() - days * 86_400_000);
    utimesSync(path, at, at);
  }
  return dir;
}

describe("purger-plugin-files", () => {
  it("deletes files older than the retention, in batches, and keeps the others", async () => {
    const dir = directory({ "a.csv": 40, "b.csv": 31, "c.csv": 29, "d.tmp": 90, "e.csv": 1, "f.csv": 35 });
    mkdirSync(join(dir, "old-subdir"));
    symlinkSync("/etc/hostname", join(dir, "link.csv"));
    const result = await runPlugin(files, {
      pool: db.pool,
      options: { dir, suffixes: [".csv"] },
      retention: "30d",
      batchSize: 2,
      now: NOW,
    });
    expect(result).toMatchObject({ status: "succeeded", processed: 3, batches: 2 });
    expect(readdirSync(dir).sort()).toEqual(["c.csv", "d.tmp", "e.csv", "link.csv", "old-subdir"]);
  });

  it("dry run names what would go and deletes nothing", async () => {
    const dir = directory({ "a.log": 10, "b.log": 3 });
    const result = await runPlugin(files, { pool: db.pool, options: { dir }, retention: "7d", now: NOW, dryRun: true });
    expect(result).toMatchObject({ status: "succeeded", processed: 1, dryRun: true, sample: ["a.log"] });
    expect(readdirSync(dir).sort()).toEqual(["a.log", "b.log"]);
  });

  it("a missing directory is a TARGET error (exit 2 in the CLI)", async () => {
    await expect(runPlugin(files, { pool: db.pool, options: { dir: "/nonexistent/purger" }, retention: "1d" })).rejects.toMatchObject({
      code: "TARGET",
      message: 'directory "/nonexistent/purger" does not exist',
    });
  });

  it("guard.maxRows stops before deleting anything", async () => {
    const dir = directory({ "1": 10, "2": 10, "3": 10 });
    const result = await runPlugin(files, { pool: db.pool, options: { dir }, retention: "1d", now: NOW, guard: { maxRows: 2 } });
    expect(result.status).toBe("guarded");
    expect(readdirSync(dir)).toHaveLength(3);
  });

  it("bin: `file` deletes one file now; a path outside the directory is refused before it is queued", async () => {
    const dir = directory({ "keep.txt": 0, "drop.txt": 0 });
    const items = await runBin(files, {
      pool: db.pool,
      id: "spool",
      options: { dir },
      retention: "1d",
      items: [{ handler: "file", payload: { name: "drop.txt" } }],
    });
    expect(items).toMatchObject([{ status: "done", processed: 1 }]);
    expect(readdirSync(dir)).toEqual(["keep.txt"]);
    await expect(
      runBin(files, {
        pool: db.pool,
        id: "spool",
        options: { dir },
        retention: "1d",
        items: [{ handler: "file", payload: { name: "../keep.txt" } }],
      }),
    ).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for spool.file: name must be a file name inside the directory, not a path",
    });
    expect(readdirSync(dir)).toEqual(["keep.txt"]);
  });
});
