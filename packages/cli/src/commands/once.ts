/**
 * `purger once <id>`: run one entry now, to completion (slices back to back),
 * taking the entry's lock like any run. Exit 0 succeeded, 1 failed or guarded,
 * 130 interrupted.
 */
import { hostname } from "node:os";
import { PurgerEventEmitter, runEntry, type RunResult } from "@purger/core/host";
import { connectDatabase } from "../database.js";
import { findEntry, loadCliConfig, onShutdownSignal, type ConfigFlags, type Io } from "../context.js";
import { reportProgress } from "../progress.js";
import { openCommandTui } from "../ui/command-tui.js";
import { wantsTui } from "../ui/load.js";

export interface OnceFlags extends ConfigFlags {
  dryRun?: boolean;
  /** A dry run through the plugin's count alone (implies --dry-run). */
  countOnly?: boolean;
  json?: boolean;
  tui?: boolean;
  wait?: boolean;
}

export interface OnceSummary extends RunResult {
  /** Process start-up (config, connection, migrations) in ms, reported apart from the run's durationMs. */
  startupMs: number;
}

export async function onceCommand(id: string, flags: OnceFlags, io: Io): Promise<number> {
  const t0 = performance.now();
  const config = await loadCliConfig(flags, io);
  const entry = findEntry(config, id);
  const dryRun = flags.countOnly ? "count" : (flags.dryRun ?? false);
  const controller = new AbortController();
  const events = new PurgerEventEmitter();
  // On a terminal (and without --no-tui / --json) the UI shows the run; logs go to a file meanwhile.
  const tui = wantsTui(flags, io.isTTY)
    ? await openCommandTui({
        mode: "once",
        title: `once ${entry.id}${dryRun === "count" ? " (count only)" : dryRun ? " (dry run)" : ""}`,
        entries: [entry],
        events,
        processId: `${hostname()}:${process.pid}`,
        concurrency: 1,
        cwd: io.cwd,
        env: io.env,
        onQuit: () => controller.abort(new Error("quit")),
      })
    : null;
  tui?.store.setStarting(entry.id);
  const log = tui?.log ?? io.log;
  let summary: OnceSummary;
  try {
    const db = await connectDatabase(config, { log, cwd: io.cwd });
    tui?.attach(db);
    const offSignal = onShutdownSignal((signal) => {
      log.warn({ signal }, "interrupted: finishing or rolling back the batch in flight");
      controller.abort(new Error(signal));
    });
    const stopProgress = tui ? () => {} : reportProgress(events, io.log, 1_000);
    const startupMs = Math.round(performance.now() - t0);
    try {
      const result = await runEntry({
        pool: db.pool,
        entry,
        trigger: "manual",
        dryRun,
        onLocked: flags.wait === false ? "fail" : "wait",
        onAbort: "interrupt",
        signal: controller.signal,
        events,
        log,
        configDir: config.dir,
        ...(tui ? { isPaused: () => tui.store.isPaused(entry.id) } : {}),
      });
      summary = { ...result, startupMs };
    } finally {
      stopProgress();
      offSignal();
      await tui?.detach();
      await db.close();
    }
  } finally {
    await tui?.close();
  }
  if (flags.json) io.out(`${JSON.stringify(summary)}\n`);
  else io.out(formatSummary(summary));
  return exitCodeOfRun(summary);
}

export function exitCodeOfRun(result: RunResult): number {
  switch (result.status) {
    case "succeeded":
      return 0;
    case "interrupted":
      return 130;
    default:
      return 1;
  }
}

export function formatSummary(r: OnceSummary): string {
  const rate = r.durationMs > 0 ? Math.round((r.processed / r.durationMs) * 1000) : 0;
  const counted = r.dryRunMode === "count";
  const seconds = `${(r.durationMs / 1000).toFixed(2)} s`;
  const lines = [
    `${r.id} (${r.plugin}): ${r.status}${counted ? " (count-only dry run: nothing was changed)" : r.dryRun ? " (dry run: nothing was changed)" : ""}`,
    counted
      ? `  would process ${r.processed}: a count by the plugin in ${seconds} (no batch ran: no row locks, no triggers)`
      : `  ${r.dryRun ? "would process" : "processed"} ${r.processed} in ${r.batches} batches, ${seconds} (${rate}/s)`,
  ];
  if (r.superseded) lines.push(`  ${r.superseded.reason}`);
  if (r.resumable) {
    const u = r.resumable;
    const what = `unfinished run ${u.runId} (cutoff ${u.cutoff ?? "none"}, ${u.processed} processed)`;
    lines.push(
      u.fingerprintMatches
        ? `  ${what}: a real run resumes it with its cutoff, not this dry run's`
        : `  ${what}: a real run does not resume it (${u.changes.join("; ")}) and starts afresh`,
    );
  }
  if (r.tables) for (const [table, n] of Object.entries(r.tables)) lines.push(`  ${table}: ${n}`);
  if (r.sample && r.sample.length > 0) lines.push(`  sample: ${r.sample.join(", ")}`);
  if (r.guard) lines.push(`  ${r.guard}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  return `${lines.join("\n")}\n`;
}
