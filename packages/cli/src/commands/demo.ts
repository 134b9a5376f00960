/**
 * `purger demo [--json] [--no-tui] [--scale n]`: zero set-up. An in-process
 * S3 server and the embedded PostgreSQL (under `.purger/demo`), seeded for
 * every scenario, and every first-party plugin at work under the terminal UI
 * until every backlog and the bin are empty; then a summary per entry.
 * Without a terminal (or with --json) the same without the UI: JSON progress
 * lines on stderr, the summary on stdout. Exit 0 done, 1 an entry failed or
 * work was left, 130 stopped by the user.
 */
import { hostname } from "node:os";
import { PurgerError, PurgerEventEmitter } from "@purger/core/host";
import { onShutdownSignal, type Io } from "../context.js";
import { runDemo, type DemoSummary } from "../demo/run-demo.js";
import { demoSummaryJson, formatDemoSummary } from "../demo/summary.js";
import { reportProgress } from "../progress.js";
import { createTuiLog, openCommandTui, type CommandTui } from "../ui/command-tui.js";
import { wantsTui } from "../ui/load.js";

export interface DemoFlags {
  json?: boolean;
  tui?: boolean;
  scale?: number;
}

export async function demoCommand(flags: DemoFlags, io: Io): Promise<number> {
  const scale = flags.scale ?? 1;
  if (!Number.isFinite(scale) || scale <= 0 || scale > 100) {
    throw new PurgerError("USAGE", `--scale: expected a number above 0 and at most 100, found ${String(flags.scale)}`, {
      hint: "--scale 0.1 seeds a tenth of the data (a quick look), --scale 1 is the default",
    });
  }
  const controller = new AbortController();
  const events = new PurgerEventEmitter();
  const tuiLog = wantsTui(flags, io.isTTY) ? createTuiLog(io.cwd, io.env) : null;
  const log = tuiLog?.log ?? io.log;
  let tui: CommandTui | null = null;
  const stopProgress = tuiLog ? () => {} : reportProgress(events, io.log);
  const offSignal = onShutdownSignal((signal) => {
    log.warn({ signal }, "demo interrupted: the worker drains, then the summary");
    controller.abort(new Error(signal));
  });
  let summary: DemoSummary;
  try {
    summary = await runDemo(
      { cwd: io.cwd, env: io.env, scale, log, events, signal: controller.signal, ...timeout(io.env) },
      {
        async onConfig(config) {
          if (!tuiLog) return;
          tui = await openCommandTui({
            mode: "demo",
            title: `demo · ${config.entries.length} entries, every first-party plugin`,
            entries: config.entries,
            events,
            processId: `${hostname()}:${process.pid}`,
            concurrency: config.worker.concurrency,
            cwd: io.cwd,
            env: io.env,
            tuiLog,
            onQuit: () => controller.abort(new Error("quit")),
          });
        },
        onStage(text) {
          if (tui) tui.store.setStage(text);
          else if (text !== null && !tuiLog) io.log.info({ event: "demo:stage" }, text);
        },
        onDatabase(database) {
          tui?.attach(database);
        },
        async beforeDatabaseClose() {
          await (tui as CommandTui | null)?.detach();
        },
        onWorker(processId) {
          tui?.store.setProcessId(processId);
        },
        isPaused: (entry) => tui?.store.isPaused(entry) ?? false,
      },
    );
  } finally {
    offSignal();
    stopProgress();
    await (tui as CommandTui | null)?.close();
  }
  io.out(flags.json ? demoSummaryJson(summary) : formatDemoSummary(summary));
  if (summary.outcome === "interrupted") return 130;
  if (summary.outcome === "timeout" || summary.failures.length > 0 || summary.bin.failed > 0) return 1;
  return 0;
}

/** `PURGER_DEMO_TIMEOUT_MS` caps the demo (tests). */
function timeout(env: NodeJS.ProcessEnv): { timeoutMs?: number } {
  const ms = Number(env.PURGER_DEMO_TIMEOUT_MS);
  return Number.isFinite(ms) && ms > 0 ? { timeoutMs: ms } : {};
}
