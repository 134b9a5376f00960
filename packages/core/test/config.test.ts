/**
 * purger.yaml: loading, interpolation, validation and resolution, against real
 * files in test/fixtures/config (a valid file, a corpus of broken ones, and a
 * directory per search place). No database is needed.
 */
import { existsSync } from "node:fs";
import { chmod, mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exitCodeOf, isPurgerError, PurgerError } from "../src/errors.js";
import { definePlugin, defineSchema } from "../src/plugin.js";
import {
  defineConfig,
  formatDuration,
  interpolateString,
  loadConfig,
  parseDuration,
  parseSchedule,
  purgerJsonSchema,
  resolveConfig,
} from "../src/config/index.js";
import { createAjv } from "../src/config/schema.js";
import fakePlugin from "./fixtures/config/plugins/fake-plugin.js";
import binOnly from "./fixtures/config/plugins/bin-only.js";

const fixtures = fileURLToPath(new URL("./fixtures/config/", import.meta.url));
const broken = path.join(fixtures, "broken");

/** The PurgerError a promise rejects with. */
async function rejectionOf(promise: Promise<unknown>): Promise<PurgerError> {
  try {
    await promise;
  } catch (error) {
    if (isPurgerError(error)) return error;
    throw error;
  }
  throw new Error("resolved without an error");
}

/** Load a file of the corpus (names shown relative to the fixtures directory) and return the error it raises. */
async function errorOf(file: string, env: Record<string, string> = {}): Promise<PurgerError> {
  return await rejectionOf(loadConfig({ configPath: path.join("broken", file), cwd: fixtures, env }));
}

/** The error's message with machine-specific directories replaced. */
function text(error: PurgerError): string {
  return error.message.replaceAll(fixtures.replace(/\/$/, ""), "<fixtures>");
}

describe("a valid file", () => {
  test("resolves with defaults inherited, env interpolated and plugins loaded", async () => {
    const config = await loadConfig({
      configPath: "valid/purger.yaml",
      cwd: fixtures,
      env: { TEST_DATABASE_URL: "postgres://purger@localhost:5432/app" },
    });
    expect(config.file).toBe(path.join(fixtures, "valid/purger.yaml"));
    expect(config.dir).toBe(path.join(fixtures, "valid"));
    expect(config.database).toEqual({ url: "postgres://purger@localhost:5432/app" });
    // ${PURGER_CONCURRENCY:-8}: the default, turned into the integer the schema wants.
    expect(config.worker).toEqual({ concurrency: 8, shutdownTimeoutMs: 45_000, schema: "purger_worker" });
    expect(config.runs).toEqual({ keepMs: 14 * 86_400_000 });
    expect(config.timezone).toBe("Europe/Paris");
    expect(config.http).toEqual({
      listen: "127.0.0.1:9555",
      token: "change-me",
      maxConnections: 32,
      probesWithoutToken: false,
      listenAt: { line: 17, column: 11 },
    });

    const entries = config.entries.map(({ plugin, ...rest }) => ({ plugin: plugin.name, ...rest }));
    expect(entries).toEqual([
      {
        id: "revoked-tokens",
        use: "../plugins/fake-plugin.ts",
        plugin: "fake-plugin",
        enabled: true,
        schedule: { kind: "cron", expression: "17 * * * *", timezone: "Europe/Paris" },
        runOnStart: false,
        retentionMs: 3_600_000,
        batchSize: 500,
        timeoutMs: 300_000,
        jitter: 0.1,
        after: null,
        guard: { maxRows: 1_000_000 },
        options: { table: "oauth2_access_tokens", column: "revoked_at", mode: "delete" },
        source: { line: 20, column: 5 },
      },
      {
        id: "sessions",
        use: "../plugins/fake-plugin.ts",
        plugin: "fake-plugin",
        enabled: true,
        schedule: null,
        runOnStart: false,
        retentionMs: 30 * 86_400_000,
        batchSize: { auto: true, targetMs: 200, initial: 1000 },
        timeoutMs: 300_000,
        jitter: 0.1,
        after: "revoked-tokens",
        guard: { maxRows: 1_000_000, maxFraction: 0.05 },
        options: { table: "sessions", column: "finished_at", mode: "update" },
        source: { line: 27, column: 5 },
      },
      {
        id: "blobs",
        use: "../plugins/bin-only.ts",
        plugin: "bin-only",
        enabled: true,
        schedule: null,
        runOnStart: false,
        retentionMs: null,
        batchSize: 500,
        timeoutMs: 300_000,
        jitter: 0.1,
        after: null,
        guard: null,
        options: { bucket: "uploads" },
        source: { line: 33, column: 5 },
      },
      {
        id: "uploads",
        use: "../plugins/optional-retention.ts",
        plugin: "optional-retention",
        enabled: false,
        schedule: { kind: "every", everyMs: 30_000 },
        runOnStart: true,
        retentionMs: null,
        batchSize: 500,
        timeoutMs: 300_000,
        jitter: 0.1,
        after: null,
        guard: null,
        options: { bucket: "uploads" },
        source: { line: 36, column: 5 },
      },
    ]);
    // The default guard does not apply to a plugin that cannot count: said, not silently dropped.
    expect(config.warnings).toMatchInlineSnapshot(`
      [
        "valid/purger.yaml:36:5 plugins[3]: defaults.guard.maxRows does not apply: plugin optional-retention cannot count what qualifies",
      ]
    `);
  });

  test("environment values override defaults of ${VAR:-default}", async () => {
    const config = await loadConfig({
      configPath: "valid/purger.yaml",
      cwd: fixtures,
      env: { TEST_DATABASE_URL: "postgres://x@db/app", PURGER_CONCURRENCY: "2", PURGER_ADMIN_TOKEN: "s3cret" },
    });
    expect(config.worker.concurrency).toBe(2);
    expect(config.http?.token).toBe("s3cret");
  });
});

describe("interpolation", () => {
  test("${VAR}, ${VAR:-default}, nested defaults and $${ for a literal", () => {
    const env = { HOST: "db", EMPTY: "" };
    expect(interpolateString("postgres://${HOST}:${PORT:-5432}/app", env)).toEqual({
      value: "postgres://db:5432/app",
      fromEnv: true,
      errors: [],
    });
    expect(interpolateString("${EMPTY:-fallback}", env).value).toBe("fallback");
    expect(interpolateString("${NOPE:-${HOST}}", env).value).toBe("db");
    expect(interpolateString("cost: $${HOST} and $5", env).value).toBe("cost: ${HOST} and $5");
    expect(interpolateString("${NOPE}", env).errors).toEqual([
      "environment variable NOPE is not set; set it, or give a default: ${NOPE:-value}",
    ]);
    expect(interpolateString("${1BAD}", env).errors).toHaveLength(1);
    expect(interpolateString("${HOST", env).errors).toHaveLength(1);
  });

  test("an unset variable without a default is an error naming its line; its value is never shown", async () => {
    const error = await errorOf("env.yaml");
    expect(error.code).toBe("CONFIG");
    expect(text(error)).toMatchInlineSnapshot(`
      "broken/env.yaml:2:8 database.url: environment variable PURGER_TEST_DB_URL is not set; set it, or give a default: \${PURGER_TEST_DB_URL:-value}
      broken/env.yaml:4:10 http.token: environment variable PURGER_TEST_FALLBACK_TOKEN is not set; set it, or give a default: \${PURGER_TEST_FALLBACK_TOKEN:-value}"
    `);
    expect(error.details).toMatchObject({
      file: path.join(broken, "env.yaml"),
      problems: [
        { line: 2, column: 8, path: "database.url" },
        { line: 4, column: 10, path: "http.token" },
      ],
    });
  });

  test("a value from the environment is not echoed when it is wrong", async () => {
    const error = await errorOf("env.yaml", { PURGER_TEST_DB_URL: "mysql://root:hunter2@db/app", PURGER_TEST_FALLBACK_TOKEN: "t" });
    expect(text(error)).toMatchInlineSnapshot(
      `"broken/env.yaml:2:8 database.url: expected a PostgreSQL URL (postgres://user:password@host:5432/database), found a value from the environment (not shown)"`,
    );
    expect(error.message).not.toContain("hunter2");
  });
});

describe("the corpus of broken files", () => {
  test("bad YAML: the parser's line and column", async () => {
    // .txt so that formatters leave the broken YAML alone: --config reads any other extension as YAML.
    const error = await errorOf("bad-yaml.txt");
    expect(error.code).toBe("CONFIG");
    expect(text(error)).toMatchInlineSnapshot(
      `"broken/bad-yaml.txt:5:5 invalid YAML: flow map in block collection must be sufficiently indented and end with a }"`,
    );
  });

  test("an empty file", async () => {
    expect(text(await errorOf("empty.yaml"))).toMatchInlineSnapshot(
      `"broken/empty.yaml:1:1 the file is empty; expected a mapping with at least \`plugins:\`"`,
    );
  });

  test("unknown top-level key, with did-you-mean at the key's position", async () => {
    expect(text(await errorOf("unknown-top-level-key.yaml"))).toMatchInlineSnapshot(
      `"broken/unknown-top-level-key.yaml:1:1 databse: unknown key; did you mean "database"?"`,
    );
  });

  test("unknown entry keys, with did-you-mean", async () => {
    const error = await errorOf("unknown-entry-key.yaml");
    expect(text(error)).toMatchInlineSnapshot(`
      "broken/unknown-entry-key.yaml:2:5 plugins[0]: missing required key "retention": plugin fake-plugin processes items older than a retention window; expected a duration like 30d (or defaults.retention)
      broken/unknown-entry-key.yaml:4:5 plugins[0].retension: unknown key; did you mean "retention"?
      broken/unknown-entry-key.yaml:5:5 plugins[0].schedul: unknown key; did you mean "schedule"?"
    `);
    expect(error.hint).toContain("purger validate");
  });

  test("wrong types: expected vs found, every problem of the file at once", async () => {
    expect(text(await errorOf("wrong-types.yaml"))).toMatchInlineSnapshot(`
      "broken/wrong-types.yaml:2:16 worker.concurrency: expected an integer, found "lots"
      broken/wrong-types.yaml:4:11 defaults.jitter: expected a percentage from 0% to 100%, found "150%"
      broken/wrong-types.yaml:5:3 defaults.schedule: not a default: set schedule on each entry; expected one of: batchSize, timeout, jitter, retention, guard, runOnStart
      broken/wrong-types.yaml:7:9 plugins[0].id: expected an id of lowercase letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters, found "Tokens.v2"
      broken/wrong-types.yaml:9:14 plugins[0].enabled: expected true or false, found "yes"
      broken/wrong-types.yaml:11:16 plugins[0].batchSize: expected a positive integer, "auto" or "auto 250ms", found 0
      broken/wrong-types.yaml:12:23 plugins[0].guard.maxRows: expected a number >= 0, found -1
      broken/wrong-types.yaml:12:40 plugins[0].guard.maxFraction: expected a fraction from 0 to 1 or a percentage like "5%", found 2
      broken/wrong-types.yaml:14:5 plugins[1]: missing required key "id"
      broken/wrong-types.yaml:15:14 plugins[1].options: expected a mapping, found a list"
    `);
  });

  test("bad durations", async () => {
    expect(text(await errorOf("bad-duration.yaml"))).toMatchInlineSnapshot(`
      "broken/bad-duration.yaml:2:9 runs.keep: expected a duration like 250ms, 90s, 15m, 1h, 7d or ISO 8601 (P30D, PT1H30M), found "P1M"; months and years have no fixed length, use days (P30D, P365D)
      broken/bad-duration.yaml:6:16 plugins[0].retention: expected a duration like 250ms, 90s, 15m, 1h, 7d or ISO 8601 (P30D, PT1H30M), found "7 days"
      broken/bad-duration.yaml:7:14 plugins[0].timeout: expected less than 4h (graphile-worker considers a job lock stale after 4h; a run continues in further slices anyway), found "5h""
    `);
  });

  test("bad cron expressions", async () => {
    expect(text(await errorOf("bad-cron.yaml"))).toMatchInlineSnapshot(`
      "broken/bad-cron.yaml:4:15 plugins[0].schedule: invalid cron expression "61 * * * *": too large value '61' in the minute field: expected values in the range 0-59
      broken/bad-cron.yaml:9:15 plugins[1].schedule: unsupported cron expression "0 9 * * MON": the day-of-week field "MON" is not a number, range, list or */n; names (MON, JAN) and L/W/#/? are not supported
      broken/bad-cron.yaml:14:15 plugins[2].schedule: expected a 5-field cron expression (minute hour day-of-month month day-of-week, e.g. "17 * * * *") or "every 30s", found "*/10 * * * * *" (6 fields); seconds are not supported, use "every 30s" for sub-minute schedules"
    `);
  });

  test("bad timezones", async () => {
    expect(text(await errorOf("bad-timezone.yaml"))).toMatchInlineSnapshot(`
      "broken/bad-timezone.yaml:1:11 timezone: expected an IANA timezone name (UTC, Europe/Paris, America/New_York), found "Mars/Olympus"
      broken/bad-timezone.yaml:6:15 plugins[0].timezone: expected an IANA timezone name (UTC, Europe/Paris, America/New_York), found "Europe/Pariss""
    `);
  });

  test("`every` below one second", async () => {
    expect(text(await errorOf("every-500ms.yaml"))).toMatchInlineSnapshot(
      `"broken/every-500ms.yaml:4:15 plugins[0].schedule: expected an interval of 1s or more, found "every 500ms""`,
    );
  });

  test("a plugin that cannot be found: PLUGIN, naming the entry, the use string and where it looked", async () => {
    const error = await errorOf("unknown-plugin.yaml");
    expect(error.code).toBe("PLUGIN");
    expect(text(error)).toMatchInlineSnapshot(`
      "broken/unknown-plugin.yaml:3:10 plugins[0] (id "tokens"): cannot load "@acme/purger-plugin-nope": package "@acme/purger-plugin-nope" is not installed; looked in <fixtures>/broken, <fixtures>
      broken/unknown-plugin.yaml:6:10 plugins[1] (id "local"): cannot load "./plugins/missing.ts": no file <fixtures>/broken/plugins/missing.ts (tried the extensions .ts, .mts, .js, .mjs, .cjs and an index file)"
    `);
    expect(error.hint).toContain("use:");
  });

  test("a plugin with an invalid shape, and one that throws while loading", async () => {
    const error = await errorOf("invalid-plugin.yaml");
    expect(error.code).toBe("PLUGIN");
    expect(text(error)).toMatchInlineSnapshot(`
      "broken/invalid-plugin.yaml:3:10 plugins[0] (id "shapeless"): "../plugins/bad-shape.ts" does not export a purger plugin: version: expected a string, found 2; usesRetention: expected true, false or a function of the options, found nothing; it has neither a batch function nor bin handlers, so it can do nothing
      broken/invalid-plugin.yaml:5:10 plugins[1] (id "crashing"): cannot load "../plugins/throws-on-load.ts" (<fixtures>/plugins/throws-on-load.ts): boom: AWS_REGION is not set"
    `);
  });

  test("a plugin whose schemas ajv's strict mode refuses: PLUGIN when it is loaded, naming the plugin, the schema and the keyword", async () => {
    const error = await errorOf("strict-schemas.yaml");
    expect(error.code).toBe("PLUGIN");
    expect(exitCodeOf(error)).toBe(2);
    expect(text(error)).toMatchInlineSnapshot(`
      "broken/strict-schemas.yaml:3:10 plugins[0] (id "misspelt"): plugin misspelt-keyword ("../plugins/misspelt-keyword.ts") has an invalid JSON Schema: options: unknown keyword "minimun" at #/properties/limit; did you mean "minimum"?
      broken/strict-schemas.yaml:5:10 plugins[1] (id "formats"): plugin unknown-format ("../plugins/unknown-format.ts") has an invalid JSON Schema: options: unknown format "emial" ignored in schema at path "#/properties/contact"
      broken/strict-schemas.yaml:7:10 plugins[2] (id "payloads"): plugin bad-payload-schema ("../plugins/bad-payload-schema.ts") has an invalid JSON Schema: bin.file.schema: unknown keyword "maxLenght" at #/properties/name; did you mean "maxLength"?"
    `);
  });

  test("duplicate ids", async () => {
    expect(text(await errorOf("duplicate-ids.yaml"))).toMatchInlineSnapshot(
      `"broken/duplicate-ids.yaml:6:9 plugins[1].id: duplicate id "tokens", already used by plugins[0] (line 2); expected a unique id"`,
    );
  });

  test("an `after:` cycle is reported as the cycle", async () => {
    expect(text(await errorOf("after-cycle.yaml"))).toMatchInlineSnapshot(`
      "broken/after-cycle.yaml:6:12 plugins[0].after: cycle tokens → sessions → tokens; expected a chain that starts at an entry with a schedule
      broken/after-cycle.yaml:14:12 plugins[2].after: cycle selfish → selfish; expected a chain that starts at an entry with a schedule"
    `);
  });

  test("`after:` naming a missing id", async () => {
    expect(text(await errorOf("after-missing.yaml"))).toMatchInlineSnapshot(
      `"broken/after-missing.yaml:10:12 plugins[1].after: no entry has the id "revoked-tokns"; expected the id of another entry; did you mean "revoked-tokens"?"`,
    );
  });

  test("retention missing where the plugin requires it, present where it refuses it", async () => {
    expect(text(await errorOf("retention.yaml"))).toMatchInlineSnapshot(`
      "broken/retention.yaml:2:5 plugins[0]: missing required key "retention": plugin fake-plugin processes items older than a retention window; expected a duration like 30d (or defaults.retention)
      broken/retention.yaml:7:5 plugins[1].retention: this plugin uses no retention (plugin bin-only with these options); remove the key
      broken/retention.yaml:9:5 plugins[2]: missing required key "retention": plugin optional-retention processes items older than a retention window; expected a duration like 30d (or defaults.retention)"
    `);
  });

  test("options failing the plugin's schema: plugins[0].options.<key> with its line", async () => {
    const error = await errorOf("options-schema.yaml");
    expect(text(error)).toMatchInlineSnapshot(`
      "broken/options-schema.yaml:6:7 plugins[0].options: missing required key "column"
      broken/options-schema.yaml:6:14 plugins[0].options.table: expected a string, found 42
      broken/options-schema.yaml:7:7 plugins[0].options.colum: unknown key; did you mean "column"?
      broken/options-schema.yaml:8:13 plugins[0].options.mode: expected one of "delete", "update", found "remove""
    `);
    expect(error.details?.["problems"]).toContainEqual({
      line: 6,
      column: 7,
      path: "plugins[0].options",
      message: 'missing required key "column"',
    });
  });

  test("an admin endpoint beyond loopback needs a token", async () => {
    expect(text(await errorOf("http-public.yaml"))).toMatchInlineSnapshot(
      `"broken/http-public.yaml:2:3 http: missing required key "token": every request to the admin endpoint (0.0.0.0:9464) must carry it; expected a token (token: \${PURGER_ADMIN_TOKEN})"`,
    );
  });

  test("an admin endpoint on loopback needs a token too; http.maxConnections is a positive integer", async () => {
    const error = await errorOf("http-loopback-no-token.yaml");
    expect(text(error)).toMatchInlineSnapshot(`
      "broken/http-loopback-no-token.yaml:2:3 http: missing required key "token": every request to the admin endpoint (127.0.0.1:9464) must carry it; expected a token (token: \${PURGER_ADMIN_TOKEN})
      broken/http-loopback-no-token.yaml:3:19 http.maxConnections: expected a number >= 1, found 0"
    `);
  });

  test("http.listen without a host is refused where it is written, not when the server starts", async () => {
    expect(text(await errorOf("http-empty-host.yaml"))).toMatchInlineSnapshot(
      `"broken/http-empty-host.yaml:2:11 http.listen: expected host:port (e.g. 127.0.0.1:9464) or a port number, found ":9464""`,
    );
  });

  test("a YAML alias bomb (billion laughs) fails at once, at the alias past the limit", async () => {
    const error = await errorOf("alias-bomb.yaml");
    expect(text(error)).toMatchInlineSnapshot(
      `"broken/alias-bomb.yaml:4:17 invalid YAML: aliases expand to more than 1000 values (1640 at *a2); anchors nested to multiply (a "billion laughs" file) are refused"`,
    );
  });

  test("durations too long for a date or a timer", async () => {
    const error = await errorOf("huge-duration.yaml");
    expect(text(error)).toMatchInlineSnapshot(`
      "broken/huge-duration.yaml:2:9 runs.keep: expected a duration of at most 36500d (about 100 years), found "99999999999d"
      broken/huge-duration.yaml:4:20 worker.shutdownTimeout: expected less than 24d (a Node timer waits at most 24.8 days), found "30d"
      broken/huge-duration.yaml:6:14 defaults.retention: expected a duration of at most 36500d (about 100 years), found "999999999999999999999999999999999999999999999999999999999..."
      broken/huge-duration.yaml:10:16 plugins[0].retention: expected a duration of at most 36500d (about 100 years), found "99999999999999999999999999999w"
      broken/huge-duration.yaml:14:15 plugins[1].schedule: expected an interval of at most 36500d (about 100 years), found "every 99999999999d"
      broken/huge-duration.yaml:15:16 plugins[1].retention: expected a duration of at most 36500d (about 100 years), found "P99999999999999D""
    `);
  });

  test("schedule and after together; a bin-only plugin scheduled; a guard a plugin cannot enforce; a host's graphile_worker schema", async () => {
    expect(text(await errorOf("schedule-conflicts.yaml"))).toMatchInlineSnapshot(`
      "broken/schedule-conflicts.yaml:2:11 worker.schema: expected a schema of purger's worker alone (a host application's own graphile-worker may live there), found "graphile_worker"
      broken/schedule-conflicts.yaml:13:5 plugins[1].after: an entry runs on a schedule or after another entry, not both; expected either schedule or after, found both
      broken/schedule-conflicts.yaml:17:5 plugins[2].schedule: plugin bin-only has no scheduled sweep (bin handlers only), so schedule does nothing here; remove the key
      broken/schedule-conflicts.yaml:18:5 plugins[2].guard: plugin bin-only has no scheduled sweep (bin handlers only), so guard does nothing here; remove the key
      broken/schedule-conflicts.yaml:23:14 plugins[3].guard.maxRows: plugin optional-retention cannot count what qualifies, so this guard cannot be enforced; remove it"
    `);
  });
});

describe("finding the file", () => {
  test("searches up from the working directory", async () => {
    const config = await loadConfig({ cwd: path.join(fixtures, "search/yaml-in-parent/sub/deeper"), env: {} });
    expect(config.file).toBe(path.join(fixtures, "search/yaml-in-parent/purger.yml"));
    expect(config.entries[0]?.retentionMs).toBe(7 * 86_400_000);
  });

  test("no configuration: a CONFIG error that suggests `purger init`", async () => {
    const error = await rejectionOf(loadConfig({ cwd: path.join(fixtures, "search/none"), env: {} }));
    expect(error.code).toBe("CONFIG");
    expect(error.hint).toMatchInlineSnapshot(`"run \`purger init\` to write a starter purger.yaml, or pass --config FILE"`);
  });

  test("an empty purger.yaml found by the search is an error, not skipped", async () => {
    const error = await rejectionOf(loadConfig({ cwd: path.join(fixtures, "search/empty"), env: {} }));
    expect(text(error)).toMatchInlineSnapshot(`"purger.yaml:1:1 the file is empty; expected a mapping with at least \`plugins:\`"`);
  });

  test("--config of a missing file", async () => {
    const error = await rejectionOf(loadConfig({ configPath: "nope.yaml", cwd: fixtures }));
    expect(error.code).toBe("CONFIG");
    expect(text(error)).toMatchInlineSnapshot(`"cannot read nope.yaml: no such file"`);
  });

  test(".purgerrc.json: read with positions too", async () => {
    const error = await rejectionOf(loadConfig({ cwd: path.join(fixtures, "search/rc-json"), env: {} }));
    expect(text(error)).toMatchInlineSnapshot(`
      ".purgerrc.json:3:24 database.url: environment variable PURGER_TEST_DB_URL is not set; set it, or give a default: \${PURGER_TEST_DB_URL:-value}
      .purgerrc.json:9:7 plugins[0].batchsize: unknown key; did you mean "batchSize"?"
    `);
  });

  test("purger.config.ts with defineConfig, a plugin object as `use`, and interpolation", async () => {
    const config = await loadConfig({ cwd: path.join(fixtures, "search/ts-config"), env: {} });
    expect(config.file).toBe(path.join(fixtures, "search/ts-config/purger.config.ts"));
    expect(config.entries.map((entry) => [entry.id, entry.use, entry.plugin, entry.options])).toEqual([
      ["tokens", "fake-plugin", fakePlugin, { table: "tokens", column: "revoked_at", mode: "delete" }],
      ["blobs", "../../plugins/bin-only.ts", binOnly, { bucket: "uploads" }],
    ]);
    expect(config.entries[0]?.schedule).toEqual({ kind: "every", everyMs: 3_600_000 });
  });

  test('"purger" in package.json', async () => {
    const config = await loadConfig({ cwd: path.join(fixtures, "search/pkg"), env: {} });
    expect(config.file).toBe(path.join(fixtures, "search/pkg/package.json"));
    expect(config.entries[0]?.retentionMs).toBe(86_400_000);
  });
  test("package.json: problems named by path, without line numbers", async () => {
    const error = await rejectionOf(loadConfig({ cwd: path.join(fixtures, "search/pkg-broken"), env: {} }));
    expect(text(error)).toMatchInlineSnapshot(`"package.json plugins[0]: missing required key "use""`);
  });
});

describe("use: package names", () => {
  let dir: string;
  beforeAll(async () => {
    // A real package in a node_modules of a directory outside the project, resolved through its `exports`.
    dir = await mkdtemp(path.join(os.tmpdir(), "purger-config-"));
    const pkg = path.join(dir, "vendor/node_modules/purger-plugin-fixture");
    await mkdir(path.join(pkg, "src"), { recursive: true });
    await writeFile(
      path.join(pkg, "package.json"),
      JSON.stringify({
        name: "purger-plugin-fixture",
        type: "module",
        exports: { ".": { import: "./src/index.js", require: "./nope.cjs" } },
      }),
    );
    await writeFile(
      path.join(pkg, "src/index.js"),
      `export default { name: "purger-plugin-fixture", version: "0.1.0", options: { type: "object" }, usesRetention: false, async batch() { return { processed: 0, cursor: null }; } };\n`,
    );
    await mkdir(path.join(dir, "app"));
    await writeFile(path.join(dir, "app/purger.yaml"), "plugins:\n  - id: vendor\n    use: purger-plugin-fixture\n");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("resolve from resolvePaths after the config directory and the cwd", async () => {
    const config = await loadConfig({
      configPath: path.join(dir, "app/purger.yaml"),
      cwd: dir,
      env: {},
      resolvePaths: [path.join(dir, "vendor")],
    });
    expect(config.entries[0]?.plugin.name).toBe("purger-plugin-fixture");
  });

  test("without the path that has it: where it looked", async () => {
    const error = await rejectionOf(loadConfig({ configPath: path.join(dir, "app/purger.yaml"), cwd: dir, env: {} }));
    expect(error.code).toBe("PLUGIN");
    expect(error.message.replaceAll(dir, "<tmp>")).toMatchInlineSnapshot(
      `"app/purger.yaml:3:10 plugins[0] (id "vendor"): cannot load "purger-plugin-fixture": package "purger-plugin-fixture" is not installed; looked in <tmp>/app, <tmp>"`,
    );
  });
});

describe("R14: a hostile environment", () => {
  // <root> is ours (mkdtemp, 0700) and holds the project's package.json; <root>/shared is
  // world-writable with the sticky bit, like /tmp; the project sits below it.
  let root: string;
  const marker = (name: string) => path.join(root, `${name}-ran`);
  /** A module that leaves a marker file when it runs. */
  const plantedModule = (name: string, exported: string) =>
    `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker(name))}, "ran");\nexport default ${exported};\n`;
  const planted = (name: string) =>
    `{ name: ${JSON.stringify(name)}, version: "6.6.6", options: { type: "object" }, usesRetention: false, async batch() { return { processed: 0, cursor: null }; } }`;
  const plantPackage = async (dir: string, name: string, source: string) => {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "package.json"), JSON.stringify({ name, type: "module", exports: "./index.js" }));
    await writeFile(path.join(dir, "index.js"), source);
  };
  const shown = (text: string) => text.replaceAll(root, "<root>");

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "purger-hostile-"));
    await writeFile(path.join(root, "package.json"), JSON.stringify({ name: "project", private: true }));
    const shared = path.join(root, "shared");
    await mkdir(path.join(shared, "app/sub"), { recursive: true });
    await writeFile(path.join(shared, "purger.config.mjs"), plantedModule("config", "{ plugins: [] }"));
    const firstParty = path.join(shared, "node_modules/@purger/plugin-retention");
    await plantPackage(firstParty, "@purger/plugin-retention", plantedModule("first-party", planted("planted-retention")));
    await plantPackage(
      path.join(shared, "node_modules/purger-plugin-planted"),
      "purger-plugin-planted",
      plantedModule("third-party", planted("planted")),
    );
    // What the CLI ships: its own @purger/plugin-retention.
    await plantPackage(
      path.join(root, "cli/node_modules/@purger/plugin-retention"),
      "@purger/plugin-retention",
      `export default { name: "cli-retention", version: "1.0.0", options: { type: "object" }, usesRetention: false, async batch() { return { processed: 0, cursor: null }; } };\n`,
    );
    await chmod(shared, 0o1777);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("a purger.config.mjs in a world-writable parent is never run; the error says it was passed over", async () => {
    const error = await rejectionOf(loadConfig({ cwd: path.join(root, "shared/app/sub"), env: {} }));
    expect(existsSync(marker("config"))).toBe(false);
    expect(error.code).toBe("CONFIG");
    expect(shown(error.message)).toMatchInlineSnapshot(
      `"no purger configuration found in <root>/shared/app/sub or its parents up to the project root <root> (looked for purger.yaml, purger.yml, .purgerrc, .purgerrc.yaml, .purgerrc.yml, .purgerrc.json, purger.config.js, purger.config.mjs, purger.config.ts and "purger" in package.json); passed over, as others can write there: <root>/shared is writable by every user (mode 1777)"`,
    );
    expect(shown(error.hint ?? "")).toMatchInlineSnapshot(
      `"run \`purger init\` to write a starter purger.yaml, or pass --config FILE (a file you name is read wherever it is)"`,
    );
  });

  test("the search stops at the working directory when no package.json or .git marks a project above it", async () => {
    const outside = await mkdtemp(path.join(os.tmpdir(), "purger-no-project-"));
    try {
      await writeFile(path.join(outside, "purger.yaml"), "plugins: []\n");
      await mkdir(path.join(outside, "app"));
      const error = await rejectionOf(loadConfig({ cwd: path.join(outside, "app"), env: {} }));
      expect(error.message.replaceAll(outside, "<dir>")).toMatchInlineSnapshot(
        `"no purger configuration found in <dir>/app (looked for purger.yaml, purger.yml, .purgerrc, .purgerrc.yaml, .purgerrc.yml, .purgerrc.json, purger.config.js, purger.config.mjs, purger.config.ts and "purger" in package.json); no package.json or .git in it or above it marks a project, so its parents were not searched"`,
      );
      // A .git (directory or file) marks the project root as well as a package.json does.
      await mkdir(path.join(outside, ".git"));
      const config = await loadConfig({ cwd: path.join(outside, "app"), env: {} });
      expect(config.file).toBe(path.join(outside, "purger.yaml"));
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  test("@purger/* resolves from the CLI's own packages before a node_modules planted in a parent", async () => {
    const app = path.join(root, "shared/app");
    await writeFile(path.join(app, "purger.yaml"), 'plugins:\n  - id: tokens\n    use: "@purger/plugin-retention"\n');
    try {
      const config = await loadConfig({
        configPath: path.join(app, "purger.yaml"),
        cwd: app,
        env: {},
        resolvePaths: [path.join(root, "cli")],
      });
      expect(config.entries[0]?.plugin.name).toBe("cli-retention");
      expect(existsSync(marker("first-party"))).toBe(false);
    } finally {
      await rm(path.join(app, "purger.yaml"));
    }
  });

  test("any other package in a world-writable directory's node_modules is passed over, never imported", async () => {
    const app = path.join(root, "shared/app");
    await writeFile(path.join(app, "purger.yaml"), "plugins:\n  - id: planted\n    use: purger-plugin-planted\n");
    try {
      const error = await rejectionOf(
        loadConfig({ configPath: path.join(app, "purger.yaml"), cwd: app, env: {}, resolvePaths: [path.join(root, "cli")] }),
      );
      expect(existsSync(marker("third-party"))).toBe(false);
      expect(error.code).toBe("PLUGIN");
      expect(shown(error.message)).toMatchInlineSnapshot(
        `"purger.yaml:3:10 plugins[0] (id "planted"): cannot load "purger-plugin-planted": package "purger-plugin-planted" is not installed; looked in <root>/shared/app, <root>/cli; passed over, as others can write there: <root>/shared is writable by every user (mode 1777)"`,
      );
    } finally {
      await rm(path.join(app, "purger.yaml"));
    }
  });
});

describe("in code", () => {
  test("options are checked against the formats of ajv-formats (email, date-time …)", async () => {
    const mailer = definePlugin({
      name: "mailer",
      version: "1.0.0",
      usesRetention: false,
      options: defineSchema({
        type: "object",
        additionalProperties: false,
        properties: { contact: { type: "string", format: "email" }, since: { type: "string", format: "date-time" } },
      }),
      async batch() {
        return { processed: 0, cursor: null };
      },
    });
    const config = defineConfig({
      plugins: [{ id: "mail", use: mailer, options: { contact: "ops@example.com", since: "2026-01-01T00:00:00Z" } }],
    });
    expect((await resolveConfig(config, { env: {} })).entries[0]?.options).toEqual({
      contact: "ops@example.com",
      since: "2026-01-01T00:00:00Z",
    });
    const error = await rejectionOf(
      resolveConfig(defineConfig({ plugins: [{ id: "mail", use: mailer, options: { contact: "ops", since: "yesterday" } }] }), { env: {} }),
    );
    expect(error.code).toBe("CONFIG");
    expect(error.message).toMatchInlineSnapshot(`
      "(config) plugins[0].options.contact: expected a string in the email format, found "ops"
      (config) plugins[0].options.since: expected a string in the date-time format, found "yesterday""
    `);
  });

  test("resolveConfig checks a configuration built in code like a file", async () => {
    const config = await resolveConfig(
      defineConfig({ plugins: [{ id: "tokens", use: fakePlugin, retention: "0s", options: { table: "t", column: "c" } }] }),
      { env: {} },
    );
    expect(config.file).toBeNull();
    expect(config.database.url).toBeNull();
    expect(config.entries[0]).toMatchObject({
      id: "tokens",
      retentionMs: 0,
      batchSize: 1000,
      timeoutMs: 600_000,
      jitter: 0,
      enabled: true,
      runOnStart: false,
    });

    const error = await rejectionOf(resolveConfig({ plugins: [{ id: "tokens", use: fakePlugin, options: { table: "t" } }] }, { env: {} }));
    expect(error.message).toMatchInlineSnapshot(`"(config) plugins[0].options: missing required key "column""`);
  });
});

describe("durations and schedules", () => {
  test.each([
    ["90s", 90_000],
    ["15m", 900_000],
    ["1h", 3_600_000],
    ["7d", 604_800_000],
    ["30d", 2_592_000_000],
    ["250ms", 250],
    ["0s", 0],
    ["1h30m", 5_400_000],
    ["P30D", 2_592_000_000],
    ["PT1H30M", 5_400_000],
    ["P1W", 604_800_000],
  ])("parseDuration(%s) = %d ms", (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  test("durations without a fixed length or a unit are refused", () => {
    expect(() => parseDuration("P1M")).toThrowErrorMatchingInlineSnapshot(
      `[PurgerError: expected a duration like 250ms, 90s, 15m, 1h, 7d or ISO 8601 (P30D, PT1H30M), found "P1M"; months and years have no fixed length, use days (P30D, P365D)]`,
    );
    expect(() => parseDuration("10")).toThrow(/expected a duration/);
  });

  test("formatDuration", () => {
    expect([0, 250, 90_000, 5_400_000, 2_592_000_000, 90_061_001].map(formatDuration)).toEqual([
      "0s",
      "250ms",
      "1m30s",
      "1h30m",
      "30d",
      "1d1h1m1s1ms",
    ]);
  });

  test("schedules", () => {
    expect(parseSchedule("every 30s")).toEqual({ kind: "every", everyMs: 30_000 });
    expect(parseSchedule("every 1s")).toEqual({ kind: "every", everyMs: 1_000 });
    expect(parseSchedule("0 3 * * 1-5", { timezone: "America/New_York" })).toEqual({
      kind: "cron",
      expression: "0 3 * * 1-5",
      timezone: "America/New_York",
    });
    expect(() => parseSchedule("every 999ms")).toThrow(/1s or more/);
    expect(() => parseSchedule("0 0 31 2 *")).toThrow(/never fires/);
  });
});

describe("the published schema", () => {
  test("describes every top-level key and, given plugins, their options", () => {
    const schema = purgerJsonSchema([fakePlugin]);
    expect(Object.keys(schema["properties"] as object)).toEqual([
      "$schema",
      "database",
      "worker",
      "runs",
      "timezone",
      "defaults",
      "http",
      "plugins",
    ]);
    const validate = createAjv().compile(schema);
    expect(validate({ plugins: [{ id: "a", use: "fake-plugin", options: { table: "t", column: "c" } }] })).toBe(true);
    expect(validate({ plugins: [{ id: "a", use: "fake-plugin", options: { table: "t" } }] })).toBe(false);
    // Another `use` is not held to fake-plugin's schema.
    expect(validate({ plugins: [{ id: "a", use: "other", options: { anything: 1 } }] })).toBe(true);
  });
});

describe("http: the admin endpoint's keys", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "purger-config-http-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function load(name: string, yaml: string, env: Record<string, string> = {}) {
    await writeFile(path.join(dir, name), yaml);
    return loadConfig({ configPath: name, cwd: dir, env });
  }

  test("probesWithoutToken is off by default, a boolean when given, and the place of http.listen is kept for the listen error", async () => {
    const plain = await load("plain.yaml", "http:\n  listen: 127.0.0.1:9555\n  token: t\nplugins: []\n");
    expect(plain.http).toEqual({
      listen: "127.0.0.1:9555",
      token: "t",
      maxConnections: 32,
      probesWithoutToken: false,
      listenAt: { line: 2, column: 11 },
    });
    const probes = await load("probes.yaml", "http:\n  token: t\n  probesWithoutToken: true\nplugins: []\n");
    // listen not written: the default, placed at `http:` itself.
    expect(probes.http).toMatchObject({ listen: "127.0.0.1:9464", probesWithoutToken: true, listenAt: { line: 1, column: 1 } });
    const error = await rejectionOf(load("wrong.yaml", 'http:\n  token: t\n  probesWithoutToken: "yes please"\nplugins: []\n'));
    expect(error.message).toBe('wrong.yaml:3:23 http.probesWithoutToken: expected true or false, found "yes please"');
  });

  test("replicas on one host each set their own address: listen: ${PURGER_HTTP_LISTEN:-127.0.0.1:9464}", async () => {
    const yaml = "http:\n  listen: ${PURGER_HTTP_LISTEN:-127.0.0.1:9464}\n  token: t\nplugins: []\n";
    expect((await load("replica.yaml", yaml)).http?.listen).toBe("127.0.0.1:9464");
    expect((await load("replica.yaml", yaml, { PURGER_HTTP_LISTEN: "127.0.0.1:9465" })).http).toMatchObject({
      listen: "127.0.0.1:9465",
      listenAt: { line: 2, column: 11 },
    });
    const error = await rejectionOf(load("replica.yaml", yaml, { PURGER_HTTP_LISTEN: "127.0.0.1:99999" }));
    expect(error.message).toBe("replica.yaml:2:11 http.listen: expected a port from 0 to 65535, found 99999");
  });
});
