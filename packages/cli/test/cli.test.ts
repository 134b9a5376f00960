/**
 * The `purger` binary as a user runs it: exit codes (README.md, "Using it"), what it prints
 * on stdout and stderr, and which rows remain afterwards. Every test spawns
 * the real binary with pipes (no TTY: JSON logs on stderr) against a database
 * of its own on the test PostgreSQL.
 */
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createTestDatabase, type TestDatabase } from "@purger/core/testing";
import {
  configText,
  NOTES_PLUGIN,
  idSpan,
  normalize,
  purger,
  retentionEntry,
  runRows,
  seedTable,
  spawnPurger,
  tempDir,
  writeConfig,
} from "./helpers.js";

let db: TestDatabase;
let pool: pg.Pool;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  db = await createTestDatabase("cli");
  pool = db.pool;
});
afterAll(async () => {
  for (const c of cleanups) c();
  await db?.drop();
});

/** A project directory whose purger.yaml points at the test database. */
function project(plugins: string, more: { defaults?: string; worker?: string } = {}): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  writeConfig(dir, configText({ url: db.url, plugins, ...more }));
  return dir;
}

/** stdout/stderr with the project's path and the database URL made stable. */
function clean(text: string, dir: string): string {
  return normalize(text, { [dir]: "<dir>", [db.url]: "<url>" });
}

describe("validate", () => {
  it("a valid file: exit 0 and a summary of its entries", async () => {
    const dir = project(
      retentionEntry({ id: "events", table: "events", retention: "7d" }) +
        retentionEntry({ id: "audit", table: "audit", retention: "P30D" }),
    );
    const r = await purger(["validate"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(clean(r.stdout, dir)).toMatchInlineSnapshot(`
      "<dir>/purger.yaml: valid, 2 entries
        events: @purger/plugin-retention, retention 7d
        audit: @purger/plugin-retention, retention 30d
      "
    `);
  });

  it("a broken file: exit 2, each problem with file:line:col and its path, nothing else printed on stdout", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    writeConfig(
      dir,
      `database:
  url: ${JSON.stringify(db.url)}
plugins:
  - id: events
    use: "@purger/plugin-retention"
    retention: 7 days
    options:
      table: events
      colum: created_at
`,
    );
    const r = await purger(["validate"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(clean(r.stderr, dir)).toMatchInlineSnapshot(`
      "purger: purger.yaml:6:16 plugins[0].retention: expected a duration like 250ms, 90s, 15m, 1h, 7d or ISO 8601 (P30D, PT1H30M), found "7 days"
      purger.yaml:8:7 plugins[0].options: missing required key "column"
      purger.yaml:9:7 plugins[0].options.colum: unknown key; did you mean "column"?
      hint: fix the file, then check it with \`purger validate\`; \`purger schema\` prints a JSON Schema your editor can check purger.yaml with as you type
      "
    `);
  });

  it("needs no secrets: a ${VAR} that is not set is a warning naming its line, its value unchecked; once refuses it", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    writeConfig(
      dir,
      `database:
  url: \${CI_LESS_DATABASE_URL}
plugins:
  - id: events
    use: "@purger/plugin-retention"
    retention: 7d
    options: { table: events, column: created_at }
`,
    );
    const env = { CI_LESS_DATABASE_URL: undefined };
    const [validate, once] = await Promise.all([purger(["validate"], { cwd: dir, env }), purger(["once", "events"], { cwd: dir, env })]);
    expect(validate.code).toBe(0);
    expect(clean(validate.stdout, dir)).toMatchInlineSnapshot(`
      "<dir>/purger.yaml: valid, 1 entry
        events: @purger/plugin-retention, retention 7d
      warning: purger.yaml:2:8 database.url: not checked: environment variable CI_LESS_DATABASE_URL is not set here
      "
    `);
    expect(once.code).toBe(2);
    expect(clean(once.stderr, dir)).toContain("purger.yaml:2:8 database.url: environment variable CI_LESS_DATABASE_URL is not set");
  });
});

describe("once", () => {
  it("--json: exit 0, one JSON object on stdout, exactly the rows past the cutoff deleted", async () => {
    await seedTable(pool, "once_json", 250, 30);
    const dir = project(retentionEntry({ id: "events", table: "once_json", retention: "7d", batchSize: 100 }));
    const r = await purger(["once", "events", "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n").filter(Boolean);
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(summary).toMatchObject({
      id: "events",
      plugin: "@purger/plugin-retention",
      status: "succeeded",
      dryRun: false,
      processed: 250,
      batches: 3,
    });
    expect(summary.durationMs).toEqual(expect.any(Number));
    expect(await idSpan(pool, "once_json")).toEqual({ count: 30, min: 251, max: 280 });
    // stderr carries only JSON log lines.
    expect(
      r.stderr
        .split("\n")
        .filter(Boolean)
        .every((l) => l.startsWith("{")),
    ).toBe(true);
    const [run] = await runRows(pool, "events");
    expect(run).toMatchObject({ id: summary.runId, status: "succeeded", processed: 250, batches: 3, trigger: "manual" });
  });

  it("--dry-run counts and samples what would go and changes nothing", async () => {
    await seedTable(pool, "once_dry", 40, 10);
    const dir = project(retentionEntry({ id: "dry", table: "once_dry", retention: "7d", batchSize: 15 }));
    const r = await purger(["once", "dry", "--dry-run"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(clean(r.stdout, dir)).toMatchInlineSnapshot(`
      "dry (@purger/plugin-retention): succeeded (dry run: nothing was changed)
        would process 40 in 3 batches, <t> s (<n>/s)
        sample: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
      "
    `);
    expect(await idSpan(pool, "once_dry")).toEqual({ count: 50, min: 1, max: 50 });
  });

  it("a missing table or column: exit 2 before anything changes", async () => {
    await seedTable(pool, "once_target", 5, 0);
    const dir = project(
      retentionEntry({ id: "no-table", table: "once_nope" }) +
        retentionEntry({ id: "no-column", table: "once_target", column: "deleted_at" }),
    );
    const [table, column] = await Promise.all([purger(["once", "no-table"], { cwd: dir }), purger(["once", "no-column"], { cwd: dir })]);
    expect(table.code).toBe(2);
    expect(table.stdout).toBe("");
    expect(
      clean(table.stderr, dir)
        .split("\n")
        .filter((l) => !l.startsWith("{")),
    ).toMatchInlineSnapshot(`
      [
        "purger: table "once_nope" does not exist in the search_path (entry "no-table", options.table)",
        "hint: check the table name and the database purger connects to (\`purger doctor\`)",
        "",
      ]
    `);
    expect(column.code).toBe(2);
    expect(
      clean(column.stderr, dir)
        .split("\n")
        .filter((l) => !l.startsWith("{")),
    ).toMatchInlineSnapshot(`
      [
        "purger: column "deleted_at" does not exist in table public.once_target (entry "no-column", options.column)",
        "hint: its columns are: id, created_at",
        "",
      ]
    `);
    expect(await idSpan(pool, "once_target")).toEqual({ count: 5, min: 1, max: 5 });
    expect(await runRows(pool, "no-table")).toEqual([]);
    expect(await runRows(pool, "no-column")).toEqual([]);
  });

  it("past a guard: exit 1, nothing deleted, and the guard's figures (R8)", async () => {
    await seedTable(pool, "once_guard", 120, 80);
    const dir = project(
      retentionEntry({ id: "rows", table: "once_guard", retention: "7d", guard: "{ maxRows: 100 }" }) +
        retentionEntry({ id: "fraction", table: "once_guard", retention: "7d", guard: "{ maxFraction: 0.5 }" }),
    );
    const [rows, fraction] = await Promise.all([
      purger(["once", "rows"], { cwd: dir }),
      purger(["once", "fraction", "--json"], { cwd: dir }),
    ]);
    expect(rows.code).toBe(1);
    expect(clean(rows.stdout, dir)).toMatchInlineSnapshot(`
      "rows (@purger/plugin-retention): guarded
        processed 0 in 0 batches, <t> s (<n>/s)
        guard.maxRows: more than 100 items qualify (counted 101, stopped counting at 101); nothing was changed
      "
    `);
    expect(fraction.code).toBe(1);
    expect(JSON.parse(fraction.stdout)).toMatchObject({ status: "guarded", processed: 0 });
    expect(JSON.parse(fraction.stdout).guard).toMatchInlineSnapshot(
      `"guard.maxFraction: at least 101 of 200 items (50.5%) qualify, more than the limit of 50.0%; nothing was changed"`,
    );
    expect(await idSpan(pool, "once_guard")).toEqual({ count: 200, min: 1, max: 200 });
    expect((await runRows(pool, "rows")).map((r) => [r.status, r.processed])).toEqual([["guarded", 0]]);
  });

  it("an unknown entry: exit 2 naming the entries there are", async () => {
    const dir = project(retentionEntry({ id: "events", table: "events" }) + retentionEntry({ id: "sessions", table: "sessions" }));
    const r = await purger(["once", "event"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(clean(r.stderr, dir)).toMatchInlineSnapshot(`
      "purger: no entry "event" in <dir>/purger.yaml
      hint: did you mean "events"? entries: events, sessions
      "
    `);
  });

  it("another process runs the entry: --no-wait exits 1 saying so; without it, once says it waits, then runs", async () => {
    await seedTable(pool, "once_lock", 30, 5);
    const dir = project(retentionEntry({ id: "locked", table: "once_lock", retention: "7d" }));
    // The entry lock as a running purger process holds it: a session advisory lock.
    const holder = await pool.connect();
    try {
      await holder.query("SET application_name = 'purger run (another process)'");
      await holder.query("SELECT pg_advisory_lock(hashtextextended('purger:entry:locked', 0))");
      const noWait = await purger(["once", "locked", "--no-wait"], { cwd: dir });
      expect(noWait.code).toBe(1);
      expect(clean(noWait.stderr, dir).replace(/backend pid \d+, since [\d:]+/, "backend pid <pid>, since <time>")).toMatchInlineSnapshot(`
        "purger: entry "locked" is running in another process: purger run (another process) (backend pid <pid>, since <time>)
        hint: wait for it to finish, or run without --no-wait to wait for it
        "
      `);
      expect(await idSpan(pool, "once_lock")).toMatchObject({ count: 35 });

      const waiting = spawnPurger(["once", "locked", "--json"], { cwd: dir });
      const givingUp = spawnPurger(["once", "locked", "--json"], { cwd: dir });
      const wait = await waiting.waitForLog((l) => l.event === "run:lock:wait");
      expect(wait).toMatchObject({ entry: "locked", msg: "waiting for another process running this entry" });
      expect(String(wait.holder)).toContain("purger run (another process)");
      // Ctrl-C while waiting: interrupted (130), nothing recorded.
      await givingUp.waitForLog((l) => l.event === "run:lock:wait");
      givingUp.kill("SIGINT");
      const gaveUp = await givingUp.exited;
      expect(gaveUp.code).toBe(130);
      expect(JSON.parse(gaveUp.stdout)).toMatchObject({ status: "interrupted", runId: null, processed: 0 });
      expect(waiting.child.exitCode).toBe(null);
      expect(await runRows(pool, "locked")).toEqual([]);
      await holder.query("SELECT pg_advisory_unlock(hashtextextended('purger:entry:locked', 0))");
      const r = await waiting.exited;
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ status: "succeeded", processed: 30 });
    } finally {
      holder.release();
    }
    expect(await idSpan(pool, "once_lock")).toEqual({ count: 5, min: 31, max: 35 });
  });
});

describe("status, plan, schema, init, enqueue", () => {
  it("status --json: the last run of each entry and no live process", async () => {
    await seedTable(pool, "status_t", 7, 3);
    const dir = project(
      retentionEntry({ id: "status-e", table: "status_t", retention: "7d" }) + retentionEntry({ id: "never", table: "status_t" }),
    );
    expect((await purger(["once", "status-e"], { cwd: dir })).code).toBe(0);
    const r = await purger(["status", "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    const status = JSON.parse(r.stdout) as { entries: Array<Record<string, unknown>>; processes: unknown[]; bin: unknown[] };
    expect(status.entries.map((e) => e.entry)).toEqual(["status-e", "never"]);
    expect(status.entries[0]).toMatchObject({ entry: "status-e", running: null, failures: 0, last: { status: "succeeded", processed: 7 } });
    expect(status.entries[1]).toMatchObject({ entry: "never", running: null, last: null });
    expect(status.processes).toEqual([]);
  });

  it("plan: a table of every entry with its target, retention, schedule and backlog", async () => {
    await seedTable(pool, "plan_t", 12, 4);
    const dir = project(
      retentionEntry({ id: "hourly", table: "plan_t", retention: "7d", schedule: "17 * * * *" }) +
        retentionEntry({ id: "often", table: "plan_t", retention: "30m", schedule: "every 30s" }) +
        retentionEntry({ id: "manual", table: "plan_t", retention: "30d" }),
    );
    const r = await purger(["plan"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(clean(r.stdout, dir)).toMatchInlineSnapshot(`
      "entry   plugin                    target             retention  schedule      next run                  backlog
      hourly  @purger/plugin-retention  plan_t.created_at  7d         17 * * * *    <time>  12
      often   @purger/plugin-retention  plan_t.created_at  30m        every 30s     <time>  16
      manual  @purger/plugin-retention  plan_t.created_at  30d        bin / manual  -                         0
      "
    `);
  });

  it("schema: a valid JSON Schema that accepts a good purger.yaml and rejects a typo", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const r = await purger(["schema"], { cwd: dir });
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as Record<string, unknown>;
    const requireFromCore = createRequire(join(import.meta.dirname, "../../core/package.json"));
    const ajvModule = requireFromCore("ajv") as {
      default: new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown } };
    };
    const ajv = new ajvModule.default({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const good = {
      database: { url: "postgres://localhost/x" },
      plugins: [
        { id: "t", use: "@purger/plugin-retention", retention: "7d", schedule: "every 30s", options: { table: "t", column: "ts" } },
      ],
    };
    expect(validate(good)).toBe(true);
    expect(validate({ ...good, plugins: [{ ...good.plugins[0], retenton: "7d" }] })).toBe(false);
  });

  it("init writes a starter purger.yaml that validates, and refuses to overwrite it", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const first = await purger(["init"], { cwd: dir });
    expect(first.code).toBe(0);
    expect(clean(first.stdout, dir)).toMatchInlineSnapshot(`
      "wrote <dir>/purger.yaml
      next: edit it, then \`purger validate\` and \`purger once revoked-access-tokens --dry-run\`
      "
    `);
    const written = readFileSync(join(dir, "purger.yaml"), "utf8");
    const [validate, again] = await Promise.all([purger(["validate"], { cwd: dir }), purger(["init"], { cwd: dir })]);
    expect(validate.code).toBe(0);
    expect(again.code).toBe(2);
    expect(clean(again.stderr, dir)).toMatchInlineSnapshot(`
      "purger: <dir>/purger.yaml already exists
      hint: use --force to overwrite it
      "
    `);
    expect(readFileSync(join(dir, "purger.yaml"), "utf8")).toBe(written);
    expect(existsSync(join(dir, ".purger"))).toBe(false);
  });

  it("enqueue: an unknown kind, a payload that is not JSON, or one its handler's schema refuses: exit 2, nothing queued", async () => {
    const dir = project(`- id: notes\n  use: ./notes-plugin.mjs\n  options: {}\n`);
    writeConfig(dir, NOTES_PLUGIN, "notes-plugin.mjs");
    const [kind, json, payload] = await Promise.all([
      purger(["enqueue", "notes.nope", "{}"], { cwd: dir }),
      purger(["enqueue", "notes.note", "{id: 1}"], { cwd: dir }),
      purger(["enqueue", "notes.note", '{"id": "one"}'], { cwd: dir }),
    ]);
    expect(kind.code).toBe(2);
    expect(clean(kind.stderr, dir)).toMatchInlineSnapshot(`
      "purger: unknown bin kind "notes.nope"
      hint: kinds of this config: notes.note
      "
    `);
    expect(json.code).toBe(2);
    expect(clean(json.stderr, dir)).toMatchInlineSnapshot(`
      "purger: the payload is not valid JSON: Expected property name or '}' in JSON at position 1
      hint: notes.note takes a JSON object with id (integer, required), quoted for the shell: purger enqueue notes.note '{…}'
      "
    `);
    expect(payload.code).toBe(2);
    expect(
      clean(payload.stderr, dir)
        .split("\n")
        .filter((l) => !l.startsWith("{")),
    ).toMatchInlineSnapshot(`
      [
        "purger: bin payload for notes.note: /id must be integer",
        "hint: see \`purger schema\` for the payload of each kind",
        "",
      ]
    `);
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM purger.bin");
    expect(rows[0].n).toBe(0);
    const ok = await purger(["enqueue", "notes.note", '{"id": 7}'], { cwd: dir });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^\d+\n$/);
  });
});

describe("R6: hostile identifiers and payloads", () => {
  const VICTIM = "r6_victim";

  it("a table or column name carrying SQL is refused (exit 2); a real table with quotes, spaces and unicode in its names is quoted and works; nothing is dropped", async () => {
    await pool.query(`DROP TABLE IF EXISTS ${VICTIM}; CREATE TABLE ${VICTIM} (id int); INSERT INTO ${VICTIM} VALUES (1)`);
    const weird = `we"ird; DROP TABLE ${VICTIM}; --`;
    const clock = "créé à";
    await pool.query(
      `CREATE TABLE "we""ird; DROP TABLE ${VICTIM}; --" (id bigserial PRIMARY KEY, "créé à" timestamptz NOT NULL, note text)`,
    );
    await pool.query(
      `INSERT INTO "we""ird; DROP TABLE ${VICTIM}; --" ("créé à", note)
       SELECT now() - g * interval '1 day', CASE WHEN g % 2 = 0 THEN $1 ELSE 'plain' END FROM generate_series(1, 20) g`,
      [`x'); DROP TABLE ${VICTIM}; --`],
    );
    const dir = project(
      retentionEntry({ id: "inject-table", table: `users; DROP TABLE ${VICTIM}` }) +
        retentionEntry({ id: "inject-column", table: VICTIM, column: `id; DROP TABLE ${VICTIM}` }) +
        retentionEntry({ id: "inject-quote", table: `${VICTIM}" CASCADE; --` }) +
        retentionEntry({
          id: "weird",
          table: weird,
          column: clock,
          retention: "7d",
          extra: `where:\n  note: ${JSON.stringify(`x'); DROP TABLE ${VICTIM}; --`)}\n`,
        }),
    );
    const refused = await Promise.all(["inject-table", "inject-column", "inject-quote"].map((id) => purger(["once", id], { cwd: dir })));
    for (const r of refused) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/does not exist/);
    }
    const r = await purger(["once", "weird", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    // Rows 8…20 are older than 7 days; of those, the even ones carry the note.
    expect(JSON.parse(r.stdout)).toMatchObject({ status: "succeeded", processed: 7 });
    const { rows } = await pool.query<{ id: number }>(`SELECT id::int FROM "we""ird; DROP TABLE ${VICTIM}; --" ORDER BY id`);
    expect(rows.map((x) => x.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 15, 17, 19]);
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${VICTIM}`)).rows[0].n).toBe(1);
  });

  it("an entry id or payload carrying SQL, and a huge payload, are refused with exit 2", async () => {
    const dir = project(`- id: notes\n  use: ./notes-plugin.mjs\n  options: {}\n`);
    writeConfig(dir, NOTES_PLUGIN, "notes-plugin.mjs");
    const badId = project(retentionEntry({ id: `x'; DROP TABLE ${VICTIM}; --`, table: VICTIM }));
    const [payload, huge, validate] = await Promise.all([
      purger(["enqueue", "notes.note", `{"id": 1, "x": "'); DROP TABLE ${VICTIM}; --"}`], { cwd: dir }),
      purger(["enqueue", "notes.note", JSON.stringify({ id: 1, pad: "x".repeat(100_000) })], { cwd: dir }),
      purger(["validate"], { cwd: badId }),
    ]);
    expect(payload.code).toBe(2);
    expect(huge.code).toBe(2);
    expect(
      clean(huge.stderr, dir)
        .split("\n")
        .filter((l) => !l.startsWith("{")),
    ).toMatchInlineSnapshot(`
      [
        "purger: bin payload for notes.note: 100017 bytes, more than the limit of 65536",
        "",
      ]
    `);
    expect(validate.code).toBe(2);
    expect(clean(validate.stderr, badId)).toMatchInlineSnapshot(`
      "purger: purger.yaml:4:9 plugins[0].id: expected an id of lowercase letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters, found "x'; DROP TABLE r6_victim; --"
      hint: fix the file, then check it with \`purger validate\`; \`purger schema\` prints a JSON Schema your editor can check purger.yaml with as you type
      "
    `);
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${VICTIM}`)).rows[0].n).toBe(1);
    expect((await pool.query("SELECT count(*)::int AS n FROM purger.bin WHERE payload ? 'x' OR payload ? 'pad'")).rows[0].n).toBe(0);
  });
});
