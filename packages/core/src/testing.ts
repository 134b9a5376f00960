/**
 * `@purger/core/testing`: run a plugin against a real PostgreSQL in a few
 * lines of a vitest test, through the real engine (transactions, checkpoints,
 * guards, dry runs) — no mocks.
 *
 * ```ts
 * const db = await createTestDatabase();
 * const result = await runPlugin(myPlugin, { pool: db.pool, options: { table: "t", column: "ts" }, retention: "7d" });
 * expect(result.processed).toBe(3);
 * ```
 */
import type pg from "pg";
import type { EntryConfig, Guard, PurgerConfig } from "./config/types.js";
import { parseDuration } from "./config/durations.js";
import { optionsValidator } from "./config/resolve-plugin.js";
import { migrate } from "./db/migrations.js";
import { PurgerError } from "./errors.js";
import { PurgerEventEmitter } from "./events.js";
import type { AnyPlugin, Diagnostic } from "./plugin.js";
import { runEntry, type RunResult } from "./engine/run-entry.js";
import { silentLogger, type Logger } from "./log.js";
import { binKinds, enqueue, getBinItem, type BinItem } from "./engine/bin.js";
import { startWorker } from "./engine/worker.js";

export { createTestDatabase, getTestServerUrl } from "./db/test-database.js";
export type { TestDatabase } from "./db/test-database.js";
export type { RunResult } from "./engine/run-entry.js";
export type { BinItem } from "./engine/bin.js";

const migrated = new WeakSet<pg.Pool>();

export interface TestEntryOptions {
  pool: pg.Pool;
  /** Entry id (default "test"). */
  id?: string;
  options: unknown;
  /** Duration text as in purger.yaml (`7d`, `0s`); default none. */
  retention?: string;
  batchSize?: number;
  /** Slice length as in purger.yaml (default 10m). */
  timeout?: string;
  guard?: Guard;
  dryRun?: boolean;
  /** Fix the run's start time (the cutoff is `now − retention`). */
  now?: Date;
  events?: PurgerEventEmitter;
  log?: Logger;
  signal?: AbortSignal;
  /** Directory plugins resolve relative paths from (default cwd). */
  configDir?: string;
}

/** Build the entry purger.yaml would produce (options validated, defaults applied). */
export function testEntry(plugin: AnyPlugin, options: TestEntryOptions): EntryConfig {
  const validate = optionsValidator(plugin);
  const value = structuredClone(options.options);
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map((e) => `options${e.instancePath.replaceAll("/", ".")}: ${e.message}`);
    throw new PurgerError("CONFIG", `invalid options for ${plugin.name}:\n${problems.join("\n")}`);
  }
  return {
    id: options.id ?? "test",
    use: plugin.name,
    plugin,
    enabled: true,
    schedule: null,
    runOnStart: false,
    retentionMs: options.retention === undefined ? null : parseDuration(options.retention),
    batchSize: options.batchSize ?? 1000,
    timeoutMs: options.timeout === undefined ? 600_000 : parseDuration(options.timeout),
    jitter: 0,
    after: null,
    guard: options.guard ?? null,
    options: value,
  };
}

const registered = new WeakMap<pg.Pool, Set<string>>();

/** Migrate once per pool, and register the entry's bin kinds as `purger run` does (a sweep may enqueue into its own kinds). */
async function ensureMigrated(pool: pg.Pool, entry: EntryConfig): Promise<void> {
  const kinds = binKinds([entry]);
  const known = registered.get(pool) ?? new Set<string>();
  if (migrated.has(pool) && kinds.every((k) => known.has(k.kind))) return;
  await migrate(pool, {
    workerSchema: "purger_worker",
    kinds: kinds.map((k) => ({ kind: k.kind, entry: entry.id, handler: k.handlerName })),
  });
  migrated.add(pool);
  for (const k of kinds) known.add(k.kind);
  registered.set(pool, known);
}

/** Run one entry of `plugin` to completion (all slices back to back), as `purger once` does. */
export async function runPlugin(plugin: AnyPlugin, options: TestEntryOptions): Promise<RunResult> {
  const entry = testEntry(plugin, options);
  await ensureMigrated(options.pool, entry);
  const now = options.now;
  return runEntry({
    pool: options.pool,
    entry,
    trigger: "manual",
    dryRun: options.dryRun ?? false,
    onLocked: "wait",
    onAbort: "interrupt",
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.events ? { events: options.events } : {}),
    log: options.log ?? silentLogger,
    ...(now ? { now: () => now } : {}),
    ...(options.configDir ? { configDir: options.configDir } : {}),
  });
}

/** The plugin's `purger doctor` diagnostics for one entry. */
export async function checkPlugin(plugin: AnyPlugin, options: TestEntryOptions): Promise<Diagnostic[]> {
  const entry = testEntry(plugin, options);
  if (!plugin.check) return [];
  const ctx = {
    entry: { id: entry.id, retentionMs: entry.retentionMs, configDir: options.configDir ?? process.cwd() },
    options: entry.options,
    pool: options.pool,
    log: options.log ?? silentLogger,
    signal: new AbortController().signal,
  };
  const state = plugin.prepare ? await plugin.prepare(ctx) : undefined;
  try {
    return await plugin.check({ ...ctx, state });
  } finally {
    if (plugin.release) await plugin.release(state);
  }
}

export interface TestBinOptions extends TestEntryOptions {
  /** Items to enqueue, as `<handler>` (the kind is `<id>.<handler>`) and payload. */
  items: { handler: string; payload: unknown }[];
  /** Attempts before an item ends as failed (default 3; backoff 1 s, 2 s …). */
  maxAttempts?: number;
  /** Give up waiting after this long (default 30 s). */
  waitMs?: number;
  /** Worker concurrency (default 2). */
  concurrency?: number;
}

/**
 * Enqueue bin items through `purger.enqueue` (validated like `purger enqueue`) and
 * handle them with a real worker until each is done or failed. Returns the items' final rows.
 */
export async function runBin(plugin: AnyPlugin, options: TestBinOptions): Promise<BinItem[]> {
  const entry = testEntry(plugin, options);
  const kinds = binKinds([entry]);
  await migrate(options.pool, {
    workerSchema: "purger_worker",
    kinds: kinds.map((k) => ({ kind: k.kind, entry: entry.id, handler: k.handlerName })),
  });
  migrated.add(options.pool);
  const ids: string[] = [];
  for (const item of options.items) {
    const id = await enqueue(options.pool, `${entry.id}.${item.handler}`, item.payload, kinds);
    ids.push(id);
  }
  await options.pool.query("UPDATE purger.bin SET max_attempts = $2 WHERE id = ANY($1::bigint[])", [ids, options.maxAttempts ?? 3]);
  const config: PurgerConfig = {
    file: null,
    dir: options.configDir ?? process.cwd(),
    database: { url: null },
    worker: { concurrency: options.concurrency ?? 2, shutdownTimeoutMs: 5_000, schema: "purger_worker" },
    runs: { keepMs: 30 * 86_400_000 },
    timezone: "UTC",
    http: null,
    entries: [entry],
  };
  const worker = await startWorker({
    config,
    pool: options.pool,
    log: options.log ?? silentLogger,
    ...(options.events ? { events: options.events } : {}),
  });
  const deadline = Date.now() + (options.waitMs ?? 30_000);
  try {
    for (;;) {
      const { rows } = await options.pool.query<{ open: number }>(
        "SELECT count(*)::int AS open FROM purger.bin WHERE id = ANY($1::bigint[]) AND status = 'pending'",
        [ids],
      );
      if (rows[0]!.open === 0) break;
      if (Date.now() > deadline) throw new Error(`bin items still pending after ${options.waitMs ?? 30_000} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await worker.stop();
  }
  const items = await Promise.all(ids.map((id) => getBinItem(options.pool, id)));
  return items.filter((item): item is BinItem => item !== null);
}
