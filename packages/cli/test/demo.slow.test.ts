/**
 * `purger demo --json` end to end at full size (about 30–60 s of purging on
 * two cores, plus setting up): every entry processes something, the bin ends
 * empty, exit 0. Run with `pnpm test:slow`; demo.test.ts is the quick one.
 */
import { mkdtempSync } from "node:fs";
import { realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { purger } from "./helpers.js";

const DEMO_ENTRIES = [
  "revoked-access-tokens",
  "revoked-refresh-tokens",
  "finished-oauth2-sessions",
  "inactive-session-ips",
  "telemetry",
  "stuck-package-jobs",
  "team-objects",
  "stale-uploads",
  "robot-certs",
];

interface DemoSummaryJson {
  entries: Array<{ id: string; plugin: string; processed: number; durationMs: number; rate: number }>;
  bin: { pending: number; failed: number };
  durationMs: number;
  outcome: string;
  failures: unknown[];
  pendingSerials: number;
}

/** `purger demo --json …` in `dir`, without a terminal; its summary parsed. */
async function runDemo(dir: string, args: string[]): Promise<{ code: number | null; summary: DemoSummaryJson; stderr: string }> {
  const result = await purger(["demo", "--json", ...args], { cwd: dir, timeoutMs: 280_000 });
  let summary: DemoSummaryJson;
  try {
    summary = JSON.parse(result.stdout) as DemoSummaryJson;
  } catch {
    throw new Error(`no JSON summary on stdout (exit ${result.code})\nstdout:\n${result.stdout}\nstderr:\n${result.stderr.slice(-3000)}`);
  }
  return { code: result.code, summary, stderr: result.stderr };
}

/**
 * Remove the demo's directory, and the embedded cluster's data directory when
 * it had to live outside it (as root in a directory the PostgreSQL user cannot enter).
 */
async function removeDemoDir(dir: string): Promise<void> {
  const data = join(dir, ".purger", "demo", "pg", "data");
  const real = await realpath(data).catch(() => data);
  if (real !== data && real.startsWith("/var/lib/purger/")) await rm(real, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
}

describe("purger demo --json (full size)", () => {
  const dir = mkdtempSync(join(tmpdir(), "purger-demo-slow-"));

  afterAll(async () => {
    await removeDemoDir(dir);
  });

  it("purges every entry's backlog and drains the bin", async () => {
    const { code, summary, stderr } = await runDemo(dir, []);
    expect(code, stderr.slice(-3000)).toBe(0);
    expect(summary.outcome).toBe("done");
    expect(summary.entries.map((e) => e.id)).toEqual(DEMO_ENTRIES);
    for (const entry of summary.entries) expect(entry.processed, entry.id).toBeGreaterThan(0);
    expect(summary.entries.find((e) => e.id === "telemetry")?.processed).toBeGreaterThan(250_000);
    expect(summary.entries.find((e) => e.id === "team-objects")?.processed).toBe(8_000);
    expect(summary.bin).toEqual({ pending: 0, failed: 0 });
    expect(summary.pendingSerials).toBe(0);
  }, 300_000);
});
