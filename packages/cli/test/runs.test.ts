/**
 * The real `purger` binary and unfinished runs: `purger runs cancel`, a run
 * left by an older config (superseded, not resumed), what a dry run says about
 * it, and the count-only dry run on a table with a DELETE trigger.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createTestDatabase, type TestDatabase } from "@purger/core/testing";
import { configText, idSpan, normalize, purger, retentionEntry, runRows, seedTable, tempDir, writeConfig } from "./helpers.js";

let db: TestDatabase;
let pool: pg.Pool;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  db = await createTestDatabase("cli-runs");
  pool = db.pool;
});
afterAll(async () => {
  for (const c of cleanups) c();
  await db?.drop();
});

function project(plugins: string): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  writeConfig(dir, configText({ url: db.url, plugins }));
  return dir;
}

function clean(text: string, dir: string, runIds: string[] = []): string {
  const ids = Object.fromEntries(runIds.map((id, i) => [`run ${id}`, `run <id${i}>`]));
  return normalize(text, { [dir]: "<dir>", [db.url]: "<url>", ...ids }).replace(/\d+\.\d\d s\b/g, "<t> s");
}

/** A `running` record as a process killed mid-run leaves it (purger's schema must exist: run any command first). */
async function leftRunning(entry: string, processed: number, fingerprint: object | null = null): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO purger.runs (entry, plugin, trigger, status, cutoff, started_at, processed, batches, checkpoint, fingerprint, guard_passed_at)
     VALUES ($1, '@purger/plugin-retention', 'schedule', 'running', now() - interval '1 hour', now() - interval '1 minute', $2, 1, 'null', $3, now())
     RETURNING id::text`,
    [entry, processed, fingerprint === null ? null : JSON.stringify(fingerprint)],
  );
  return rows[0]!.id;
}

describe("runs cancel", () => {
  it("ends the unfinished run as cancelled, says so, and then finds nothing to cancel; the next once starts afresh", async () => {
    await seedTable(pool, "cancel_rows", 20, 5);
    const dir = project(retentionEntry({ id: "events", table: "cancel_rows", retention: "7d" }));
    const none = await purger(["runs", "cancel", "events"], { cwd: dir });
    expect(none.code).toBe(0);
    expect(none.stdout).toBe("events: no unfinished run, nothing to cancel\n");
    const runId = await leftRunning("events", 7);
    const r = await purger(["runs", "cancel", "events"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(clean(r.stdout, dir, [runId])).toMatchInlineSnapshot(
      `"events: cancelled run <id0> (started <time>, cutoff <time>, 7 processed); the next run starts afresh
"`,
    );
    const json = await purger(["runs", "cancel", "events", "--json"], { cwd: dir });
    expect(JSON.parse(json.stdout)).toEqual({ entry: "events", cancelled: null });
    expect((await runRows(pool, "events")).map((row) => [row.id, row.status, row.processed, row.error])).toEqual([
      [runId, "cancelled", 7, "cancelled by an operator"],
    ]);
    const once = await purger(["once", "events", "--json"], { cwd: dir });
    expect(JSON.parse(once.stdout)).toMatchObject({ status: "succeeded", processed: 20 });
    expect(JSON.parse(once.stdout).runId).not.toBe(runId);
    expect(await idSpan(pool, "cancel_rows")).toEqual({ count: 5, min: 21, max: 25 });
  });

  it("while another process runs the entry: exit 1 saying so, and the run stays unfinished", async () => {
    const dir = project(retentionEntry({ id: "busy", table: "cancel_busy" }));
    await purger(["runs", "cancel", "busy"], { cwd: dir });
    const runId = await leftRunning("busy", 3);
    const holder = await pool.connect();
    try {
      await holder.query("SET application_name = 'purger-elsewhere'");
      await holder.query("SELECT pg_advisory_lock(hashtextextended('purger:entry:busy', 0))");
      const r = await purger(["runs", "cancel", "busy"], { cwd: dir });
      expect(r.code).toBe(1);
      expect(
        clean(r.stderr, dir)
          .split("\n")
          .filter((l) => !l.startsWith("{"))
          .map((l) => l.replace(/backend pid \d+, since [\d:]+/, "backend pid <pid>, since <hh:mm:ss>")),
      ).toMatchInlineSnapshot(`
        [
          "purger: entry "busy" is running in another process: purger-elsewhere (backend pid <pid>, since <hh:mm:ss>)",
          "hint: stop that run first (q or Ctrl-C in its UI, SIGTERM to its process), then cancel the run it leaves",
          "",
        ]
      `);
    } finally {
      await holder.query("SELECT pg_advisory_unlock_all()");
      holder.release();
    }
    expect((await runRows(pool, "busy")).map((row) => [row.id, row.status])).toEqual([[runId, "running"]]);
  });

  it("is listed in --help", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const r = await purger(["runs", "--help"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatchInlineSnapshot(`
      "Usage: purger runs [options] [command]

      act on an entry's runs

      Options:
        -h, --help                display help for command

      Commands:
        cancel [options] <entry>  abandon the entry's unfinished run (never resumed;
                                  the next run starts afresh)
        help [command]            display help for command
      "
    `);
  });
});

describe("a run left by another config", () => {
  it("a dry run says a real run would not resume it; the real run supersedes it (its summary and the run records say so) and applies the new window", async () => {
    await seedTable(pool, "superseded_rows", 30, 10);
    const dir = project(retentionEntry({ id: "old", table: "superseded_rows", retention: "7d" }));
    await purger(["runs", "cancel", "old"], { cwd: dir });
    const runId = await leftRunning("old", 4, {
      plugin: "@purger/plugin-retention",
      version: "0.1.0",
      retentionMs: 3_600_000,
      guard: null,
      options: "x",
    });
    const dry = await purger(["once", "old", "--dry-run"], { cwd: dir });
    expect(dry.code).toBe(0);
    expect(clean(dry.stdout, dir, [runId])).toMatchInlineSnapshot(`
      "old (@purger/plugin-retention): succeeded (dry run: nothing was changed)
        would process 30 in 1 batches, <t> s (<n>/s)
        unfinished run <id0> (cutoff <time>, 4 processed): a real run does not resume it (retention 1h → 7d; options changed) and starts afresh
        sample: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
      "
    `);
    const real = await purger(["once", "old"], { cwd: dir });
    expect(real.code).toBe(0);
    expect(clean(real.stdout, dir, [runId])).toMatchInlineSnapshot(`
      "old (@purger/plugin-retention): succeeded
        processed 30 in 1 batches, <t> s (<n>/s)
        run <id0> cannot be resumed under the entry's current config (retention 1h → 7d; options changed); a new run replaces it
      "
    `);
    expect((await runRows(pool, "old")).filter((row) => !row.dry_run).map((row) => [row.status, row.processed])).toEqual([
      ["superseded", 4],
      ["succeeded", 30],
    ]);
    expect(await idSpan(pool, "superseded_rows")).toEqual({ count: 10, min: 31, max: 40 });
  });
});

describe("once --count-only", () => {
  it("counts through the plugin alone: no batch, so the DELETE trigger never writes its audit row; text and --json say it is a count", async () => {
    await seedTable(pool, "counted_rows", 25, 5);
    await pool.query(`
      CREATE TABLE counted_audit (id bigint NOT NULL);
      CREATE FUNCTION counted_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO counted_audit VALUES (OLD.id); RETURN OLD; END $$;
      CREATE TRIGGER counted_delete AFTER DELETE ON counted_rows FOR EACH ROW EXECUTE FUNCTION counted_audit();
    `);
    const dir = project(retentionEntry({ id: "counted", table: "counted_rows", retention: "7d", batchSize: 10 }));
    const [text, json] = [
      await purger(["once", "counted", "--count-only"], { cwd: dir }),
      await purger(["once", "counted", "--count-only", "--json"], { cwd: dir }),
    ];
    expect(text.code).toBe(0);
    expect(clean(text.stdout, dir)).toMatchInlineSnapshot(`
      "counted (@purger/plugin-retention): succeeded (count-only dry run: nothing was changed)
        would process 25: a count by the plugin in <t> s (no batch ran: no row locks, no triggers)
      "
    `);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: "succeeded", dryRun: true, dryRunMode: "count", processed: 25, batches: 0 });
    expect(await idSpan(pool, "counted_rows")).toEqual({ count: 30, min: 1, max: 30 });
    const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM counted_audit");
    expect(rows[0]!.n).toBe(0);
  });
});
