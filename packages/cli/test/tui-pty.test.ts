/**
 * The real `purger once` in a real terminal: tmux gives it a 100×30
 * pseudo-terminal (on a tmux server of this test's own), and the test reads
 * the screen with `capture-pane` while it works. `CI=true` is set inside the
 * terminal on purpose: the terminal decides, not the variable.
 *
 * And the same command with pipes instead of a terminal: no Ink, no escape
 * sequence, JSON progress lines on stderr.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "@purger/core/testing";
import { configText, parseLogLines, purger, purgerBin, retentionEntry, seedTable, tempDir, writeConfig } from "./helpers.js";

const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const socket = `purger-tui-test-${process.pid}`;

function tmux(...args: string[]): string {
  return execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
}

/** Runs `purger <args>` in a new 100×30 terminal; the exit code lands in `<dir>/rc`. */
function openTerminal(session: string, dir: string, args: string[], env: string[] = []): void {
  const command = [
    `cd ${shellQuote(dir)}`,
    // NODE_ENV is vitest's; a user's shell has none. FORCE_COLOR may be set where the tests run.
    `env -u NODE_ENV -u FORCE_COLOR -u NO_COLOR CI=true ${env.map(shellQuote).join(" ")} ${shellQuote(process.execPath)} ${shellQuote(purgerBin)} ${args.map(shellQuote).join(" ")}`,
  ].join(" && ");
  tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", `${command}; echo $? > rc; sleep 600`);
}

function screen(session: string, withEscapes = false): string {
  return tmux("capture-pane", "-p", ...(withEscapes ? ["-e"] : []), "-t", session);
}

/** SGR sequences that set a foreground or background colour (30–37, 38;…, 40–47, 48;…, 90–97, 100–107). */
function colours(text: string): string[] {
  // eslint-disable-next-line no-control-regex
  const sgr = [...text.matchAll(/\u001B\[([0-9;]*)m/g)].flatMap((m) => m[1]!.split(";").map(Number));
  return sgr.filter((n) => (n >= 30 && n <= 48) || (n >= 90 && n <= 107)).map(String);
}

interface Watch {
  screens: string[];
  exitCode: number | null;
}

/** Reads the screen every 150 ms until the command exits (or `until` holds), at most `timeoutMs`. */
async function watch(
  session: string,
  dir: string,
  options: { until?: (screen: string) => boolean; timeoutMs?: number } = {},
): Promise<Watch> {
  const screens: string[] = [];
  const deadline = performance.now() + (options.timeoutMs ?? 90_000);
  const rcFile = join(dir, "rc");
  while (performance.now() < deadline) {
    const text = screen(session);
    screens.push(text);
    if (options.until?.(text)) return { screens, exitCode: null };
    if (existsSync(rcFile)) {
      const rc = readFileSync(rcFile, "utf8").trim();
      if (rc !== "") {
        screens.push(screen(session));
        return { screens, exitCode: Number(rc) };
      }
    }
    await sleep(150);
  }
  throw new Error(`timed out; last screen:\n${screens.at(-1) ?? ""}`);
}

/** The done figures of the progress column ("12,000/150,000"), in screen order. */
function doneFigures(screens: string[]): number[] {
  const figures: number[] = [];
  for (const text of screens) {
    const match = /running\s.*?([\d,]+)\/([\d,]+)/s.exec(text);
    if (match) figures.push(Number(match[1]!.replaceAll(",", "")));
  }
  return figures;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

const OLD = 100_000;
/** Each case starts a process (a few seconds on a loaded machine) and works through 100 000 rows. */
const TIMEOUT = 150_000;

describe.skipIf(!hasTmux)("purger once in a terminal (tmux)", () => {
  let db: TestDatabase;
  const dirs: Array<{ cleanup(): void }> = [];

  beforeAll(async () => {
    db = await createTestDatabase("tui_pty");
  });

  afterAll(async () => {
    try {
      tmux("kill-server");
    } catch {
      // no session left
    }
    for (const dir of dirs) dir.cleanup();
    await db?.drop();
  });

  function project(table: string, batchSize = 250): string {
    const temp = tempDir("purger-tui-");
    dirs.push(temp);
    writeConfig(temp.dir, configText({ url: db.url, plugins: retentionEntry({ id: "old-events", table, batchSize }) }));
    return temp.dir;
  }

  it(
    "shows the entry, a progress figure that moves, then the final summary; exit 0",
    async () => {
      // Small batches: the run lasts long enough for several frames even on a quiet machine.
      await seedTable(db.pool, "events_a", OLD * 2, 1_000);
      const dir = project("events_a", 100);
      openTerminal("done", dir, ["once", "old-events", "-c", "purger.yaml"]);
      const { screens, exitCode } = await watch("done", dir);
      const last = screens.at(-1)!;

      expect(exitCode).toBe(0);
      expect(screens.some((s) => /old-events\s+retention\s+running/.test(s))).toBe(true);
      const figures = doneFigures(screens);
      expect(new Set(figures).size, `progress figures seen: ${figures.join(" ")}`).toBeGreaterThanOrEqual(2);
      expect([...figures].sort((a, b) => a - b)).toEqual(figures);
      expect(last).toContain("✔ old-events succeeded: 200,000 processed");
      expect(last).toContain("old-events (@purger/plugin-retention): succeeded");
      expect(last).toContain("processed 200000 in");
      expect(last).toContain("logs → .purger/purger.log");
      // Frames replace each other: one header per screen, never a stale line left behind.
      for (const text of screens) expect(text.match(/purger once old-events · up/g)?.length ?? 0).toBeLessThanOrEqual(1);
      const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM events_a");
      expect(rows[0]!.n).toBe(1_000);
    },
    TIMEOUT,
  );

  it(
    "q stops it at a batch boundary: the run is interrupted, exit 130",
    async () => {
      await seedTable(db.pool, "events_b", OLD * 2, 1_000);
      const dir = project("events_b");
      openTerminal("quit", dir, ["once", "old-events", "-c", "purger.yaml"]);
      await watch("quit", dir, { until: (text) => (doneFigures([text])[0] ?? 0) > 0 });
      tmux("send-keys", "-t", "quit", "q");
      const { screens, exitCode } = await watch("quit", dir);
      const last = screens.at(-1)!;

      expect(exitCode).toBe(130);
      expect(last).toContain("old-events (@purger/plugin-retention): interrupted");
      expect(last).toMatch(/old-events\s+retention\s+interrupted/);
      const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM events_b");
      expect(rows[0]!.n).toBeGreaterThan(1_000);
      const runs = await db.pool.query<{ status: string; processed: number }>(
        "SELECT status, processed::int FROM purger.runs WHERE entry = 'old-events' ORDER BY id DESC LIMIT 1",
      );
      expect(runs.rows[0]).toEqual({ status: "interrupted", processed: OLD * 2 + 1_000 - rows[0]!.n });
    },
    TIMEOUT,
  );
  it(
    "NO_COLOR: the same screen without a colour",
    async () => {
      await seedTable(db.pool, "events_d", 5_000, 100);
      const dir = project("events_d");
      openTerminal("colour", dir, ["once", "old-events", "-c", "purger.yaml"]);
      expect((await watch("colour", dir)).exitCode).toBe(0);
      const coloured = screen("colour", true);
      await seedTable(db.pool, "events_d", 5_000, 100);
      rmSync(join(dir, "rc"));
      openTerminal("plain", dir, ["once", "old-events", "-c", "purger.yaml"], ["NO_COLOR=1"]);
      expect((await watch("plain", dir)).exitCode).toBe(0);
      const plain = screen("plain", true);

      expect(colours(coloured).length).toBeGreaterThan(0);
      expect(colours(plain)).toEqual([]);
      expect(plain).toContain("✔ old-events succeeded: 5,000 processed");
    },
    TIMEOUT,
  );
});

describe("purger once without a terminal", () => {
  let db: TestDatabase;
  let dir: { dir: string; cleanup(): void };

  beforeAll(async () => {
    db = await createTestDatabase("tui_pipe");
    dir = tempDir("purger-pipe-");
  });

  afterAll(async () => {
    dir?.cleanup();
    await db?.drop();
  });

  it(
    "writes no escape sequence, even with CI unset, and logs JSON progress lines on stderr",
    async () => {
      await seedTable(db.pool, "events_c", OLD, 1_000);
      writeConfig(dir.dir, configText({ url: db.url, plugins: retentionEntry({ id: "old-events", table: "events_c", batchSize: 100 }) }));
      const result = await purger(["once", "old-events", "-c", "purger.yaml"], {
        cwd: dir.dir,
        env: { CI: undefined, FORCE_COLOR: undefined },
      });

      expect(result.code).toBe(0);
      expect(result.stdout).not.toContain("\u001B");
      expect(result.stderr).not.toContain("\u001B");
      expect(result.stdout).toContain("old-events (@purger/plugin-retention): succeeded");
      const logs = parseLogLines(result.stderr);
      const progress = logs.filter((line) => line.event === "run:progress");
      expect(progress.length, result.stderr).toBeGreaterThanOrEqual(1);
      expect(progress[0]).toMatchObject({
        entry: "old-events",
        done: expect.any(Number),
        total: expect.any(Number),
        rate: expect.any(Number),
      });
      expect(logs.some((line) => line.event === "run:finish")).toBe(true);
      expect(existsSync(join(dir.dir, ".purger", "purger.log"))).toBe(false);
    },
    TIMEOUT,
  );
});
