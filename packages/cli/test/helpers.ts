/**
 * Running the real `purger` binary from tests: a project directory with a
 * purger.yaml, the binary spawned with pipes (so no TTY: JSON logs on stderr,
 * results on stdout), and ways to wait for what it logs or writes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type pg from "pg";

export const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
export const purgerBin = join(repoRoot, "packages/cli/bin/purger.js");

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface SpawnOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
}

/** One `purger` process; stdout and stderr are collected as they arrive. */
export class PurgerProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<Exit>;
  readonly startedAt = performance.now();
  private waiters: Array<() => void> = [];

  constructor(args: string[], options: SpawnOptions) {
    this.child = spawn(process.execPath, [purgerBin, ...args], {
      cwd: options.cwd,
      env: { ...process.env, PURGER_LOG_LEVEL: "info", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => this.received("stdout", text));
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => this.received("stderr", text));
    this.exited = new Promise((resolve, reject) => {
      this.child.on("error", reject);
      this.child.on("close", (code, signal) => {
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, ms: performance.now() - this.startedAt });
        this.notify();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The JSON log lines on stderr so far. */
  logs(): LogLine[] {
    return parseLogLines(this.stderr);
  }

  /** Resolves with the first log line matching `predicate`; rejects on exit or timeout. */
  async waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    return this.waitFor(() => this.logs().find(predicate), `a log line matching ${predicate.toString()}`, timeoutMs);
  }

  async waitFor<T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = probe();
      if (found !== undefined) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`purger exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}\nstderr:\n${this.stderr}`);
      }
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nstderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGKILL if still running (test clean-up). */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited.catch(() => {});
  }

  private received(stream: "stdout" | "stderr", text: string): void {
    this[stream] += text;
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number; event?: string };

export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

export function spawnPurger(args: string[], options: SpawnOptions): PurgerProcess {
  return new PurgerProcess(args, options);
}

/** Run `purger …` to its exit (SIGKILL after `timeoutMs`). */
export async function purger(args: string[], options: SpawnOptions & { timeoutMs?: number }): Promise<Exit> {
  const child = spawnPurger(args, options);
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 45_000);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temporary directory (removed by `cleanup`). */
export function tempDir(prefix = "purger-cli-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * purger.yaml text: `database.url` (unless null: the embedded PostgreSQL),
 * the given top-level blocks, and the entries under `plugins:` (already YAML).
 */
export function configText(options: { url: string | null; plugins: string; worker?: string; defaults?: string }): string {
  const parts: string[] = [];
  if (options.url !== null) parts.push(`database:\n  url: ${JSON.stringify(options.url)}\n`);
  if (options.worker) parts.push(`worker:\n${indent(options.worker, 2)}`);
  if (options.defaults) parts.push(`defaults:\n${indent(options.defaults, 2)}`);
  parts.push(`plugins:\n${indent(options.plugins, 2)}`);
  return parts.join("");
}

export function writeConfig(dir: string, text: string, name = "purger.yaml"): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A retention entry as YAML (values JSON-quoted, so any string is safe in the file). */
export function retentionEntry(e: {
  id: string;
  table: string;
  column?: string;
  retention?: string;
  batchSize?: number | string;
  timeout?: string;
  schedule?: string;
  runOnStart?: boolean;
  guard?: string;
  extra?: string;
}): string {
  const lines = [`- id: ${JSON.stringify(e.id)}`, `  use: "@purger/plugin-retention"`, `  retention: ${e.retention ?? "1d"}`];
  if (e.batchSize !== undefined) lines.push(`  batchSize: ${e.batchSize}`);
  if (e.timeout) lines.push(`  timeout: ${e.timeout}`);
  if (e.schedule) lines.push(`  schedule: ${JSON.stringify(e.schedule)}`);
  if (e.runOnStart) lines.push(`  runOnStart: true`);
  if (e.guard) lines.push(`  guard: ${e.guard}`);
  lines.push(`  options:`, `    table: ${JSON.stringify(e.table)}`, `    column: ${JSON.stringify(e.column ?? "created_at")}`);
  if (e.extra) lines.push(indent(e.extra, 4).trimEnd());
  return `${lines.join("\n")}\n`;
}

/**
 * `CREATE TABLE <table> (id bigserial PRIMARY KEY, created_at timestamptz)` with
 * `old` rows 10 days old (ids 1…old) then `fresh` rows 1 hour old, and an index on created_at.
 */
export async function seedTable(pool: pg.Pool, table: string, old: number, fresh: number): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS ${table}`);
  await pool.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL)`);
  await pool.query(
    `INSERT INTO ${table} (created_at)
     SELECT CASE WHEN g <= $1::int THEN now() - interval '10 days' ELSE now() - interval '1 hour' END + g * interval '1 microsecond'
       FROM generate_series(1, $1::int + $2::int) g`,
    [old, fresh],
  );
  await pool.query(`CREATE INDEX ON ${table} (created_at)`);
  await pool.query(`ANALYZE ${table}`);
}

/** Ids left in a table: as a count and as the [min, max] range. */
export async function idSpan(pool: pg.Pool, table: string): Promise<{ count: number; min: number | null; max: number | null }> {
  const { rows } = await pool.query<{ count: number; min: string | null; max: string | null }>(
    `SELECT count(*)::int AS count, min(id)::text AS min, max(id)::text AS max FROM ${table}`,
  );
  const r = rows[0]!;
  return { count: r.count, min: r.min === null ? null : Number(r.min), max: r.max === null ? null : Number(r.max) };
}

/** Poll `probe` until it returns something other than undefined. */
export async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Replace what changes from run to run (the temp dir, times, ids) so output can be snapshotted. */
export function normalize(text: string, replacements: Record<string, string> = {}): string {
  let out = text;
  for (const [from, to] of Object.entries(replacements)) out = out.split(from).join(to);
  return out.replace(/\d+\.\d\d s \(\d+\/s\)/g, "<t> s (<n>/s)").replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>");
}

export interface RunRow {
  id: string;
  entry: string;
  status: string;
  trigger: string;
  dry_run: boolean;
  processed: number;
  batches: number;
  slices: number;
  process_id: string | null;
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
  guard: string | null;
}

/** purger.runs of an entry (or all), oldest first; none before purger has created its schema. */
export async function runRows(pool: pg.Pool, entry?: string): Promise<RunRow[]> {
  try {
    const { rows } = await pool.query<RunRow>(
      `SELECT id::text, entry, status, trigger, dry_run, processed::int AS processed, batches, slices, process_id, started_at, finished_at, error, guard
         FROM purger.runs WHERE ($1::text IS NULL OR entry = $1) ORDER BY id`,
      [entry ?? null],
    );
    return rows;
  } catch (error) {
    if ((error as { code?: string }).code === "42P01" || (error as { code?: string }).code === "3F000") return [];
    throw error;
  }
}

/** A bin-only plugin as a third party would write it (a plain object): records each item it handles. */
export const NOTES_PLUGIN = `
export default {
  name: "notes",
  version: "1.0.0",
  usesRetention: false,
  options: { type: "object", additionalProperties: false },
  bin: {
    note: {
      schema: { type: "object", properties: { id: { type: "integer" } }, required: ["id"], additionalProperties: false },
      async handle(ctx, payload) {
        await ctx.pool.query("CREATE TABLE IF NOT EXISTS notes (item int NOT NULL, pid int NOT NULL)");
        await ctx.pool.query("INSERT INTO notes (item, pid) VALUES ($1, $2)", [payload.id, process.pid]);
        return { processed: 1 };
      },
    },
  },
};
`;

function indent(text: string, spaces: number): string {
  const pad = " ".repeat(spaces);
  return text
    .split("\n")
    .map((line) => (line.length > 0 ? pad + line : line))
    .join("\n");
}
