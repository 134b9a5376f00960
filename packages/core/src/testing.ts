/**
 * `@purger/core/testing`: run a plugin against a real PostgreSQL in a few
 * lines of a vitest test, through the real engine (transactions, checkpoints,
 * guards, dry runs) — no mocks. Each helper's entry is resolved as purger.yaml's
 * is, so a test meets the errors and defaults a user meets (docs/plugins.md, section 7).
 *
 * ```ts
 * const db = await createTestDatabase();
 * const result = await runPlugin(myPlugin, { pool: db.pool, options: { table: "t", column: "ts" }, retention: "7d" });
 * expect(result.processed).toBe(3);
 * ```
 */
import type pg from "pg";
import type { EntryConfig, PurgerConfig } from "./config/types.js";
import type { EntryInput, GuardInput } from "./config/schema.js";
import { resolveInlineConfig } from "./config/load.js";
import { migrate } from "./db/migrations.js";
import { PurgerError } from "./errors.js";
import { PurgerEventEmitter } from "./events.js";
import type { AnyPlugin, Diagnostic } from "./plugin.js";
import { runEntry, type RunResult } from "./engine/run-entry.js";
import { silentLogger, type Logger } from "./log.js";
import { binKinds, enqueue, getBinItem, type BinItem } from "./engine/bin.js";
import { startWorker, type PurgerWorker } from "./engine/worker.js";

export { createTestDatabase, getTestServerUrl } from "./db/test-database.js";
export type { TestDatabase } from "./db/test-database.js";
export type { RunResult } from "./engine/run-entry.js";
export type { BinItem } from "./engine/bin.js";

export interface TestEntryOptions {
  pool: pg.Pool;
  /** Entry id (default "test"). */
  id?: string;
  /** The entry's `options:`, validated by the plugin's schema (its defaults applied). */
  options: unknown;
  /** Duration text as in purger.yaml (`7d`, `0s`); required when the plugin uses a retention, refused when it does not. */
  retention?: string;
  /** As in purger.yaml: a positive integer, `auto` or `auto 250ms` (default 1000). */
  batchSize?: number | string;
  /** Slice length as in purger.yaml (default 10m). */
  timeout?: string;
  /** As in purger.yaml; a guard the plugin cannot enforce is an error. */
  guard?: GuardInput;
  dryRun?: boolean;
  /** Fix the run's start time (the cutoff is `now − retention`). */
  now?: Date;
  events?: PurgerEventEmitter;
  log?: Logger;
  signal?: AbortSignal;
  /** Directory plugins resolve relative paths from (default cwd). */
  configDir?: string;
  /** Variables for `${VAR}` in option values, as purger.yaml's (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The configuration purger.yaml would give for one entry of `plugin` — through
 * the CLI's own resolution, so a missing retention, an invalid option or a guard
 * the plugin cannot enforce is the CLI's `CONFIG` error, word for word.
 */
function testConfig(plugin: AnyPlugin, options: TestEntryOptions, worker: PurgerConfigWorker = {}): PurgerConfig {
  const entry: EntryInput = {
    id: options.id ?? "test",
    use: plugin,
    ...(options.options === undefined ? {} : { options: options.options as Record<string, unknown> }),
    ...(options.retention === undefined ? {} : { retention: options.retention }),
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    ...(options.guard === undefined ? {} : { guard: options.guard }),
  };
  return resolveInlineConfig(
    { worker, plugins: [entry] },
    { ...(options.configDir === undefined ? {} : { dir: options.configDir }), ...(options.env ? { env: options.env } : {}) },
  );
}

type PurgerConfigWorker = { concurrency?: number; shutdownTimeout?: string };

/** Build the entry purger.yaml would produce (same checks and defaults as the CLI; throws its `CONFIG` error). */
export function testEntry(plugin: AnyPlugin, options: TestEntryOptions): EntryConfig {
  return testConfig(plugin, options).entries[0]!;
}

const registered = new WeakMap<pg.Pool, Set<string>>();

/** Migrate once per pool, and register the entry's bin kinds as `purger run` does (a sweep may enqueue into its own kinds). */
async function ensureMigrated(pool: pg.Pool, entry: EntryConfig): Promise<void> {
  const kinds = binKinds([entry]);
  const known = registered.get(pool);
  if (known !== undefined && kinds.every((k) => known.has(k.kind))) return;
  await migrate(pool, {
    workerSchema: "purger_worker",
    kinds: kinds.map((k) => ({ kind: k.kind, entry: entry.id, handler: k.handlerName })),
  });
  const now = known ?? new Set<string>();
  for (const k of kinds) now.add(k.kind);
  registered.set(pool, now);
}

export interface TestRunOptions extends TestEntryOptions {
  /**
   * Stop the run after this many batches of this call, as a worker shutdown stops it: the
   * batch in progress commits with its checkpoint, and the result is `suspended` (`more: true`)
   * with the run left resumable. The next `runPlugin` of the same entry resumes it.
   */
  stopAfterBatches?: number;
}

/** Run one entry of `plugin` to completion (all slices back to back), as `purger once` does. */
export async function runPlugin(plugin: AnyPlugin, options: TestRunOptions): Promise<RunResult> {
  const config = testConfig(plugin, options);
  const entry = config.entries[0]!;
  await ensureMigrated(options.pool, entry);
  const stopAfter = options.stopAfterBatches;
  if (stopAfter !== undefined && !(Number.isInteger(stopAfter) && stopAfter > 0)) {
    throw new PurgerError("USAGE", `stopAfterBatches must be a positive integer, found ${stopAfter}`);
  }
  const stop = stopAfter === undefined ? null : new AbortController();
  const events = options.events ?? (stop ? new PurgerEventEmitter() : undefined);
  let batches = 0;
  const unsubscribe =
    stop && events
      ? events.on("run:batch:done", (event) => {
          if (event.entry === entry.id && ++batches >= stopAfter!) stop.abort();
        })
      : () => {};
  const signals = [options.signal, stop?.signal].filter((signal): signal is AbortSignal => signal !== undefined);
  const now = options.now;
  try {
    return await runEntry({
      pool: options.pool,
      entry,
      trigger: "manual",
      dryRun: options.dryRun ?? false,
      onLocked: "wait",
      // A worker shutdown leaves the run resumable; `once` (Ctrl-C) ends it as interrupted.
      onAbort: stop ? "suspend" : "interrupt",
      ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
      ...(events ? { events } : {}),
      log: options.log ?? silentLogger,
      ...(now ? { now: () => now } : {}),
      configDir: config.dir,
    });
  } finally {
    unsubscribe();
  }
}

/**
 * Stop a run after `stopAfterBatches` batches (as a worker shutdown does), then run the
 * entry again: returns both results. Assert on what remains that every item was handled
 * once — none twice, none skipped. Throws when the run ended before the stop.
 */
export async function resumeAfterShutdown(
  plugin: AnyPlugin,
  options: TestEntryOptions & { stopAfterBatches: number },
): Promise<{ stopped: RunResult; resumed: RunResult }> {
  const stopped = await runPlugin(plugin, options);
  if (stopped.status !== "suspended") {
    const plural = (n: number) => `${n} batch${n === 1 ? "" : "es"}`;
    throw new PurgerError(
      "USAGE",
      `entry "${stopped.id}" ended ${stopped.status} after ${plural(stopped.batches)}, before the stop after ${plural(options.stopAfterBatches)}; seed more items or stop earlier`,
    );
  }
  const { stopAfterBatches: _, ...rest } = options;
  const resumed = await runPlugin(plugin, rest);
  return { stopped, resumed };
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

export interface TestBinWorkerOptions extends TestEntryOptions {
  /** Attempts before an item ends as failed (backoff 1 s, 2 s …); default the bin's (3). */
  maxAttempts?: number;
  /** Worker concurrency (default 2). */
  concurrency?: number;
}

/** A real bin worker for one entry, in steps, so a test can act between them (set a checkpoint, hold a lock). */
export interface TestBinWorker {
  /** The entry, as purger.yaml would make it. */
  entry: EntryConfig;
  /** The worker's events (`bin:item:start`, `bin:item:done`, `bin:item:fail` …). */
  events: PurgerEventEmitter;
  /** Enqueue through `purger.enqueue` (the payload validated like `purger enqueue`); the kind is `<id>.<handler>`. Returns the item's id. */
  enqueue(handler: string, payload: unknown): Promise<string>;
  /** Start the worker: until then enqueued items stay pending. */
  start(): Promise<void>;
  /** Wait until these items are no longer pending (default 60 s); returns their rows in the order given. */
  settle(ids: string[], waitMs?: number): Promise<BinItem[]>;
  /** Drain and stop the worker, as `purger run` does on SIGTERM; a second call does nothing. */
  stop(): Promise<void>;
}

/**
 * Migrate and register the entry's bin kinds, and prepare a worker that `start()` starts —
 * the steps `runBin` chains, kept apart.
 */
export async function startBinWorker(plugin: AnyPlugin, options: TestBinWorkerOptions): Promise<TestBinWorker> {
  const config = testConfig(plugin, options, { concurrency: options.concurrency ?? 2, shutdownTimeout: "5s" });
  const entry = config.entries[0]!;
  await ensureMigrated(options.pool, entry);
  const kinds = binKinds([entry]);
  const events = options.events ?? new PurgerEventEmitter();
  const { pool } = options;
  let worker: PurgerWorker | null = null;
  return {
    entry,
    events,
    async enqueue(handler, payload) {
      const id = await enqueue(pool, `${entry.id}.${handler}`, payload, kinds);
      if (options.maxAttempts !== undefined)
        await pool.query("UPDATE purger.bin SET max_attempts = $2 WHERE id = $1", [id, options.maxAttempts]);
      return id;
    },
    async start() {
      if (worker !== null) return;
      worker = await startWorker({ config, pool, log: options.log ?? silentLogger, events });
    },
    async settle(ids, waitMs = 60_000) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const items = (await Promise.all(ids.map((id) => getBinItem(pool, id)))).filter((item): item is BinItem => item !== null);
        const pending = items.filter((item) => item.status === "pending");
        if (pending.length === 0) return items;
        if (Date.now() > deadline) {
          const what = worker === null ? " (the worker is not started: call start())" : "";
          throw new Error(
            `bin items still pending after ${waitMs} ms${what}: ${pending.map((item) => `${item.id} (${item.kind})`).join(", ")}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      const running = worker;
      worker = null;
      await running?.stop();
    },
  };
}

export interface TestBinOptions extends TestBinWorkerOptions {
  /** Items to enqueue, as `<handler>` (the kind is `<id>.<handler>`) and payload. */
  items: { handler: string; payload: unknown }[];
  /** Attempts before an item ends as failed (default 3; backoff 1 s, 2 s …). */
  maxAttempts?: number;
  /** Give up waiting after this long (default 30 s). */
  waitMs?: number;
}

/**
 * Enqueue bin items through `purger.enqueue` (validated like `purger enqueue`) and
 * handle them with a real worker until each is done or failed. Returns the items' final rows.
 */
export async function runBin(plugin: AnyPlugin, options: TestBinOptions): Promise<BinItem[]> {
  const worker = await startBinWorker(plugin, { ...options, maxAttempts: options.maxAttempts ?? 3 });
  const ids: string[] = [];
  for (const item of options.items) ids.push(await worker.enqueue(item.handler, item.payload));
  await worker.start();
  try {
    return await worker.settle(ids, options.waitMs ?? 30_000);
  } finally {
    await worker.stop();
  }
}
