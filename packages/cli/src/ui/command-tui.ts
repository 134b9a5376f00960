/**
 * The UI of a command (`once`, `run`, `demo`): while it owns the terminal,
 * pino logs go to a file named in the footer; the cluster's status is polled
 * on a pool of its own (two connections at most), so the UI never takes a
 * connection from the run.
 */
import { relative } from "node:path";
import type pg from "pg";
import {
  binDepth,
  binKinds,
  clusterStatus,
  createPool,
  listProcesses,
  listRuns,
  nextRunAt,
  redactSecretsIn,
  type EntryConfig,
  type Logger,
  type PurgerEventEmitter,
} from "@purger/core/host";
import { createLogger, openLogFile } from "../logger.js";
import { loadTui } from "./load.js";
import type { MountedTui } from "./tui.js";
import { TuiStore, type TuiMode } from "./tui-store.js";

export interface CommandTuiOptions {
  mode: TuiMode;
  title: string;
  entries: EntryConfig[];
  events: PurgerEventEmitter;
  processId: string;
  concurrency: number;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** `q` / Ctrl-C. */
  onQuit: () => void;
  /** The log while the UI is up, when the caller made it (see `createTuiLog`); default: a new one. */
  tuiLog?: TuiLog;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
}

export interface CommandTui {
  store: TuiStore;
  /** The logger to use while the UI is up (writes to `logFile`). */
  log: Logger;
  logFile: string;
  /** The database is connected: name it in the header, start polling the cluster. */
  attach(database: { url: string; label: string }): void;
  /** Stop polling the database and close the UI's connections (before the database goes away). */
  detach(): Promise<void>;
  /** Draw the last frame and give the terminal back; stop polling. */
  close(): Promise<void>;
}

export interface TuiLog {
  log: Logger;
  /** Absolute path. */
  logFile: string;
}

/** pino to `.purger/purger.log` under the working directory, or to a private temporary directory (see `openLogFile`). */
export function createTuiLog(cwd: string, env: NodeJS.ProcessEnv): TuiLog {
  const file = openLogFile(cwd);
  const log = createLogger({ destination: file.fd, level: env.PURGER_LOG_LEVEL ?? "info" });
  if (file.refused)
    log.warn({ event: "log:refused", path: file.refused.path, reason: file.refused.reason }, `not logging to ${file.refused.path}`);
  return { log, logFile: file.path };
}

export async function openCommandTui(options: CommandTuiOptions): Promise<CommandTui> {
  const { log, logFile } = options.tuiLog ?? createTuiLog(options.cwd, options.env);
  const shown = relative(options.cwd, logFile);
  let pollPool: pg.Pool | null = null;
  const byId = new Map(options.entries.map((e) => [e.id, e]));
  const store = new TuiStore({
    mode: options.mode,
    title: options.title,
    entries: options.entries.map((e) => ({ id: e.id, plugin: e.plugin.name, kinds: binKinds([e]).map((k) => k.kind) })),
    events: options.events,
    processId: options.processId,
    concurrency: options.concurrency,
    logFile: shown.startsWith("..") ? logFile : shown,
    onQuit: options.onQuit,
    // `run` shows what the cluster does; `once` needs it less (its own lock wait comes from events).
    pollMs: options.mode === "once" ? 2_000 : 1_000,
    nextRunAt: (id) => {
      const schedule = byId.get(id)?.schedule;
      return schedule ? nextRunAt(schedule) : null;
    },
  });
  const restoreWarnings = warningsTo(log);
  const { mountTui } = await loadTui(options.env);
  const mounted: MountedTui = mountTui({
    store,
    ...(options.stdout ? { stdout: options.stdout } : {}),
    ...(options.stdin ? { stdin: options.stdin } : {}),
  });
  store.start();
  let closing: Promise<void> | null = null;
  const detach = async () => {
    store.stopPolling();
    const pool = pollPool;
    pollPool = null;
    if (pool) await pool.end().catch(() => {});
  };
  return {
    store,
    log,
    logFile,
    attach(database) {
      store.setDatabase(database.label);
      if (pollPool) return;
      const pool = createPool({ url: database.url, max: 2, applicationName: "purger-tui" }, (error) =>
        log.warn({ error: redactSecretsIn(error.message, database.url) }, "the UI's status connection failed"),
      );
      pollPool = pool;
      const ids = options.entries.map((e) => e.id);
      // `once` shows its own lock wait from events; it polls only the processes and the bin (two light queries).
      const poll =
        options.mode === "once"
          ? async () => ({ processes: await listProcesses(pool), entries: [], bin: await binDepth(pool) })
          : () => clusterStatus(pool, ids);
      // The store shows a failed poll's message on screen; the driver's words may repeat the URL.
      const redacted =
        <A extends unknown[], T>(fn: (...args: A) => Promise<T>) =>
        async (...args: A): Promise<T> => {
          try {
            return await fn(...args);
          } catch (error) {
            if (error instanceof Error) error.message = redactSecretsIn(error.message, database.url);
            throw error;
          }
        };
      store.setPoll(
        redacted(poll),
        redacted((entry: string) => listRuns(pool, { entry, limit: 8 })),
      );
    },
    detach,
    close() {
      closing ??= (async () => {
        store.stop();
        await mounted.unmount();
        restoreWarnings();
        await detach();
      })();
      return closing;
    },
  };
}

/**
 * Node prints process warnings on stderr through a 'warning' listener of its
 * own; while the UI owns the terminal they go to the log instead.
 */
function warningsTo(log: Logger): () => void {
  const printers = process.listeners("warning");
  for (const printer of printers) process.off("warning", printer);
  const toLog = (warning: Error) => log.warn({ warning: warning.name, message: warning.message }, "process warning");
  process.on("warning", toLog);
  return () => {
    process.off("warning", toLog);
    for (const printer of printers) process.on("warning", printer);
  };
}
