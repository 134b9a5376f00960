#!/usr/bin/env node
// `pnpm bench`: every bench/p*.ts in turn (through tsx), then their summary lines together.
// One embedded PostgreSQL is shared unless PURGER_BENCH_PG_URL is set; pass names to run a subset: pnpm bench p1 p4
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const scripts = readdirSync(here)
  .filter((f) => /^p\d+.*\.ts$/.test(f))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
const summaries = [];
let failed = 0;
for (const script of scripts) {
  console.log(`\n=== ${script}`);
  const result = spawnSync(process.execPath, ["--import", "tsx", join(here, script)], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  process.stdout.write(result.stdout ?? "");
  const last = (result.stdout ?? "").trim().split("\n").at(-1) ?? "";
  if (result.status !== 0) failed += 1;
  summaries.push(`${script}: ${result.status === 0 ? last : `FAILED (exit ${result.status})`}`);
}
console.log("\n=== summary");
for (const line of summaries) console.log(line);
process.exit(failed > 0 ? 1 : 0);
