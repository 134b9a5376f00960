/**
 * `purger demo --json` end to end, at a twentieth of its size: the real
 * binary, in a fresh directory that only root may enter (mkdtemp makes it
 * 0700) when the tests run as root, with nothing set up — its own embedded
 * PostgreSQL, its own S3 server. Twice, because a second run must work too
 * (and starts from the same data). The full-size run is demo.slow.test.ts.
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

describe("purger demo --json --scale 0.05", () => {
  const dir = mkdtempSync(join(tmpdir(), "purger-demo-test-"));

  afterAll(async () => {
    await removeDemoDir(dir);
  });

  it("purges every entry's backlog and drains the bin; a second run does it again", async () => {
    for (const round of [1, 2]) {
      const { code, summary, stderr } = await runDemo(dir, ["--scale", "0.05"]);
      expect(code, `round ${round}\n${stderr.slice(-3000)}`).toBe(0);
      expect(summary.outcome).toBe("done");
      expect(summary.entries.map((e) => e.id)).toEqual(DEMO_ENTRIES);
      for (const entry of summary.entries) {
        expect(entry.processed, `${entry.id} (round ${round})`).toBeGreaterThan(0);
        expect(entry.durationMs).toBeGreaterThan(0);
        expect(entry.rate).toBeGreaterThan(0);
      }
      expect(summary.bin).toEqual({ pending: 0, failed: 0 });
      expect(summary.failures).toEqual([]);
      expect(summary.pendingSerials).toBe(0);
      expect(stderr).not.toContain("\u001B");
    }
  }, 300_000);
});
