/**
 * `purger run`: the service. Worker, schedules and bin until SIGTERM/SIGINT,
 * then a graceful drain within `worker.shutdownTimeout` (exit 0).
 */
import { PurgerEventEmitter, startWorker, type Logger, type PurgerConfig } from "@purger/core/host";
import { connectDatabase } from "../database.js";
import { loadCliConfig, onShutdownSignal, type ConfigFlags, type Io } from "../context.js";
import { reportProgress } from "../progress.js";
import { startAdminServer, type AdminServer } from "../http.js";
import { openCommandTui, type CommandTui } from "../ui/command-tui.js";
import { wantsTui } from "../ui/load.js";

export interface RunFlags extends ConfigFlags {
  tui?: boolean;
  concurrency?: number;
}

export async function runCommand(flags: RunFlags, io: Io): Promise<number> {
  const config = await loadCliConfig(flags, io);
  const events = new PurgerEventEmitter();
  const concurrency = flags.concurrency ?? config.worker.concurrency;
  let drain: (reason: string) => void = () => {};
  // On a terminal (and without --no-tui) the UI shows the service; logs go to a file meanwhile.
  const tui = wantsTui(flags, io.isTTY)
    ? await openCommandTui({
        mode: "run",
        title: "run",
        entries: config.entries,
        events,
        processId: "starting…",
        concurrency,
        cwd: io.cwd,
        env: io.env,
        onQuit: () => drain("quit"),
      })
    : null;
  const log = tui?.log ?? io.log;
  try {
    const setDrain = (fn: (reason: string) => void) => {
      drain = fn;
      if (tui?.store.quitting) fn("quit");
    };
    return await serve({ config, events, io, log, tui, concurrency, setDrain });
  } finally {
    await tui?.close();
  }
}

interface ServeInput {
  config: PurgerConfig;
  events: PurgerEventEmitter;
  io: Io;
  log: Logger;
  tui: CommandTui | null;
  concurrency: number;
  setDrain(drain: (reason: string) => void): void;
}

async function serve({ config, events, io, log, tui, concurrency, setDrain }: ServeInput): Promise<number> {
  // The concurrency is fitted to the connections the database has room for (lowered with a warning).
  const db = await connectDatabase(config, { log, cwd: io.cwd, concurrency });
  tui?.attach(db);
  const stopProgress = tui ? () => {} : reportProgress(events, log);
  events.on("run:finish", (e) => {
    const level = e.status === "failed" ? "error" : "info";
    log[level](
      {
        event: "run:finish",
        entry: e.entry,
        status: e.status,
        processed: e.processed,
        durationMs: e.durationMs,
        error: e.error,
        guard: e.guard,
      },
      `${e.entry}: ${e.status}`,
    );
  });
  events.on("engine:error", (e) => log.error({ where: e.where, error: e.error.message }, "engine error"));
  // Bound before the worker starts: an address in use is a configuration error, and no run may begin before it is reported.
  let admin: AdminServer | null = null;
  if (config.http) {
    try {
      admin = await startAdminServer({ config, pool: db.pool, log, cwd: io.cwd });
    } catch (error) {
      stopProgress();
      await tui?.detach();
      await db.close();
      throw error;
    }
  }
  const heartbeatMs = Number(io.env.PURGER_HEARTBEAT_MS ?? 5_000);
  let worker: Awaited<ReturnType<typeof startWorker>>;
  try {
    worker = await startWorker({
      config,
      pool: db.pool,
      events,
      log,
      heartbeatMs,
      deadAfterMs: Number(io.env.PURGER_DEAD_AFTER_MS ?? heartbeatMs * 6),
      concurrency: db.concurrency,
      ...(tui ? { isPaused: tui.store.isPaused } : {}),
    });
  } catch (error) {
    await admin?.close();
    throw error;
  }
  tui?.store.setProcessId(worker.processId);
  tui?.store.setConcurrency(db.concurrency);
  log.info(
    {
      event: "worker:start",
      processId: worker.processId,
      database: db.label,
      entries: config.entries.map((e) => e.id),
      concurrency: db.concurrency,
    },
    "purger is running",
  );
  let exitCode = 0;
  await new Promise<void>((resolve) => {
    let draining = false;
    const drain = (reason: string) => {
      if (draining) return;
      draining = true;
      off();
      log.info({ signal: reason, timeoutMs: config.worker.shutdownTimeoutMs }, "draining: running batches finish, then purger stops");
      const timer = setTimeout(() => {
        log.error({ timeoutMs: config.worker.shutdownTimeoutMs }, "shutdown timeout passed; exiting with batches in flight rolled back");
        exitCode = 1;
        resolve();
      }, config.worker.shutdownTimeoutMs);
      timer.unref();
      worker.stop().then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        () => resolve(),
      );
    };
    const off = onShutdownSignal((signal) => drain(signal));
    setDrain(drain);
    worker.promise.catch((error: unknown) => {
      log.error({ error: error instanceof Error ? error.message : String(error) }, "worker stopped on a fatal error");
      exitCode = 1;
      resolve();
    });
  });
  stopProgress();
  await admin?.close();
  await tui?.detach();
  if (exitCode === 0) await db.close();
  return exitCode;
}
