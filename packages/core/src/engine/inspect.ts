/**
 * Looking at an entry without running it: its backlog (`purger plan`, the
 * TUI's totals) and its diagnostics (`purger doctor`).
 */
import type pg from "pg";
import type { EntryConfig } from "../config/types.js";
import { silentLogger, type Logger } from "../log.js";
import type { Diagnostic, PluginContext } from "../plugin.js";
import { initialBatchSize } from "./batch-size.js";
import { databaseNow } from "./clock.js";

export interface InspectOptions {
  pool: pg.Pool;
  entry: EntryConfig;
  configDir: string;
  log?: Logger;
}

function contextOf(options: InspectOptions): PluginContext<unknown> {
  const { entry } = options;
  return {
    entry: { id: entry.id, retentionMs: entry.retentionMs, configDir: options.configDir },
    options: entry.options,
    pool: options.pool,
    log: (options.log ?? silentLogger).child({ entry: entry.id }),
    signal: new AbortController().signal,
  };
}

async function withState<T>(options: InspectOptions, fn: (ctx: PluginContext<unknown>, state: unknown) => Promise<T>): Promise<T> {
  const plugin = options.entry.plugin;
  const ctx = contextOf(options);
  const state = plugin.prepare ? await plugin.prepare(ctx) : undefined;
  try {
    return await fn(ctx, state);
  } finally {
    if (plugin.release) await plugin.release(state);
  }
}

/** Items that would qualify now, or null when the plugin cannot estimate. Throws what `prepare` throws. */
export async function estimateEntry(options: InspectOptions): Promise<number | null> {
  const plugin = options.entry.plugin;
  if (!plugin.estimate) return null;
  return withState(options, async (ctx, state) => {
    const startedAt = await databaseNow(options.pool);
    return plugin.estimate!({
      ...ctx,
      state,
      startedAt,
      cutoff: new Date(startedAt.getTime() - (options.entry.retentionMs ?? 0)),
      dryRun: true,
      batchSize: initialBatchSize(options.entry.batchSize),
    });
  });
}

/** `prepare` (targets exist) then the plugin's own checks. A failing prepare becomes an error diagnostic. */
export async function checkEntry(options: InspectOptions): Promise<Diagnostic[]> {
  const plugin = options.entry.plugin;
  try {
    return await withState(options, async (ctx, state) => {
      const found = plugin.check ? await plugin.check({ ...ctx, state }) : [];
      return [{ level: "ok" as const, message: "targets exist" }, ...found];
    });
  } catch (error) {
    const e = error as { message?: string; hint?: string };
    return [{ level: "error", message: e.message ?? String(error), ...(e.hint ? { hint: e.hint } : {}) }];
  }
}
