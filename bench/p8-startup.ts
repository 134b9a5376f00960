/**
 * P8 (bench/README.md): start-up of the installed CLI (built packages, nothing compiled
 * at start). The packages are built, packed and installed with npm into
 * `.bench/p8-app` (outside the workspace's node_modules), then:
 *   - `purger --version`: the first run after install (cold) and the median of
 *     10 runs (warm), target < 300 ms warm;
 *   - `purger once <id>` on an empty table (a run with nothing to do), end to
 *     end from spawn to exit, median of 5, target < 1.5 s;
 *   - the installed size of `node_modules` with and without the optional
 *     embedded PostgreSQL and the demo's s3rver (`npm install --omit=optional`).
 *
 *   pnpm bench p8
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createPool, startEmbeddedPostgres } from "@purger/core/host";

const repo = fileURLToPath(new URL("..", import.meta.url));
const work = join(repo, ".bench/p8");
const env = { ...process.env, NODE_PATH: undefined, PURGER_LOG_LEVEL: "warn" };

function sh(command: string, args: string[], cwd: string): void {
  execFileSync(command, args, { cwd, stdio: ["ignore", "ignore", "inherit"], env });
}

function timed(args: string[], cwd: string, extraEnv: Record<string, string> = {}): number {
  const start = performance.now();
  const result = spawnSync(process.execPath, [join(cwd, "node_modules/.bin/purger"), ...args], {
    cwd,
    env: { ...env, ...extraEnv },
    encoding: "utf8",
  });
  const ms = performance.now() - start;
  if (result.status !== 0) throw new Error(`purger ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function install(dir: string, packs: string, omitOptional: boolean): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tarballs = readdirSync(packs).map((f) => join(packs, f));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "p8-app", private: true, type: "module" }));
  sh("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...(omitOptional ? ["--omit=optional"] : []), ...tarballs], dir);
}

function sizeMb(dir: string): number {
  const out = execFileSync("du", ["-sk", join(dir, "node_modules")], { encoding: "utf8" });
  return Math.round(Number(out.split("\t")[0]) / 1024);
}

async function main(): Promise<void> {
  rmSync(work, { recursive: true, force: true });
  const packs = join(work, "packs");
  sh("pnpm", ["run", "build"], repo);
  sh("pnpm", ["--filter", "./packages/*", "pack", "--pack-destination", packs], repo);
  const app = join(work, "app");
  const slim = join(work, "app-slim");
  install(app, packs, false);
  install(slim, packs, true);

  // The reference, measured in the same run: a bare `node -e 0` (what any Node CLI pays before its first line).
  const bare = median(
    Array.from({ length: 10 }, () => {
      const start = performance.now();
      spawnSync(process.execPath, ["-e", "0"], { env });
      return performance.now() - start;
    }),
  );
  const cold = timed(["--version"], app);
  const warm = median(Array.from({ length: 10 }, () => timed(["--version"], app)));

  const server = await startEmbeddedPostgres({ dir: join(repo, ".purger/bench-p8-pg") });
  const pool = createPool({ url: server.url, max: 1 });
  let once: number;
  try {
    await pool.query(
      "DROP TABLE IF EXISTS p8_empty; CREATE TABLE p8_empty (id bigint PRIMARY KEY, ts timestamptz); CREATE INDEX ON p8_empty (ts)",
    );
    writeFileSync(
      join(slim, "purger.yaml"),
      [
        "database:",
        "  url: ${P8_DATABASE_URL}",
        "plugins:",
        "  - id: empty",
        '    use: "@purger/plugin-retention"',
        "    retention: 1d",
        "    options: { table: p8_empty, column: ts }",
        "",
      ].join("\n"),
    );
    const runOnce = () => timed(["once", "empty", "--json"], slim, { P8_DATABASE_URL: server.url });
    runOnce();
    once = median(Array.from({ length: 5 }, runOnce));
  } finally {
    await pool.end();
    await server.stop();
  }

  const full = sizeMb(app);
  const withoutEmbedded = sizeMb(slim);
  console.log(`bare node -e 0: median ${bare.toFixed(0)} ms (the machine's floor right now)`);
  console.log(`--version: cold ${cold.toFixed(0)} ms, warm median ${warm.toFixed(0)} ms (target < 300 ms)`);
  console.log(`once with nothing to do, spawn to exit: median ${once.toFixed(0)} ms (target < 1500 ms)`);
  console.log(
    `installed node_modules: ${full} MB, ${withoutEmbedded} MB with --omit=optional (no embedded PostgreSQL, no s3rver for the demo)`,
  );
  const ok = warm < 300 && once < 1500;
  console.log(
    `P8 ${ok ? "ok" : "MISSED"}: --version warm ${warm.toFixed(0)} ms (${(warm / bare).toFixed(1)}× bare node), cold ${cold.toFixed(0)} ms; empty once ${once.toFixed(0)} ms (${(once / bare).toFixed(1)}× bare node); ${full} MB / ${withoutEmbedded} MB installed`,
  );
}

await main();
