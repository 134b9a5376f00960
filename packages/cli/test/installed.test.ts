/**
 * What a team and a plugin author outside this repository get: the packages
 * built (`pnpm build`), packed (`pnpm pack`), and installed with plain npm
 * into directories outside the workspace. The CLI runs from its built
 * JavaScript; `examples/plugin-files` is built, type-checked under a strict
 * consumer tsconfig and tested against the packed core, then packed and used
 * from a purger.yaml like any npm plugin.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync, mkdirSync } from "node:fs";
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

/** The installed `purger`, as a user runs it (`npx purger …` runs this file). */
async function purger(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(app, "node_modules/.bin/purger"), ...args], {
      cwd: app,
      env: userEnv({ PURGER_LOG_LEVEL: "warn", ...env }),
      maxBuffer: 16 * 1024 * 1024,
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
  mkdirSync(app);
  await sh("pnpm", ["run", "build"], repoRoot);
  await sh("pnpm", ["--filter", "./packages/*", "pack", "--pack-destination", packs], repoRoot);
  for (const file of readdirSync(packs)) tarballs[file.replace(/-\d+\.\d+\.\d+\.tgz$/, "")] = join(packs, file);
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({
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
    }),
  );
  await npm(["install"], app);
  db = await createTestDatabase("installed");
}, INSTALL_TIMEOUT);

afterAll(async () => {
  await db?.drop();
  if (work) rmSync(work, { recursive: true, force: true });
});

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
    writeFileSync(
      config,
      [
        "database:",
        "  url: ${TEAM_DATABASE_URL}",
        "plugins:",
        "  - id: finished-sessions",
        '    use: "@purger/plugin-retention"',
        "    retention: 10d",
        "    batchSize: 300",
        "    options: { table: sessions, column: finished_at }",
        "",
      ].join("\n"),
    );
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
