/**
 * `purger run`: the service. Worker, schedules and bin until SIGTERM/SIGINT,
 * then a graceful drain within `worker.shutdownTimeout` (exit 0).
 */
import { PurgerEventEmitter, startWorker } from "@purger/core";
import { connectDatabase } from "../database.js";
import { loadCliConfig, onShutdownSignal, type ConfigFlags, type Io } from "../context.js";
import { reportProgress } from "../progress.js";

export interface RunFlags extends ConfigFlags {
  tui?: boolean;
  concurrency?: number;
}

export async function runCommand(flags: RunFlags, io: Io): Promise<number> {
  const config = await loadCliConfig(flags, io);
  const db = await connectDatabase(config, { log: io.log, cwd: io.cwd });
  const events = new PurgerEventEmitter();
  const stopProgress = reportProgress(events, io.log);
  events.on("run:finish", (e) => {
    const level = e.status === "failed" ? "error" : "info";
    io.log[level]({ event: "run:finish", entry: e.entry, status: e.status, processed: e.processed, durationMs: e.durationMs, error: e.error, guard: e.guard }, `${e.entry}: ${e.status}`);
  });
  events.on("engine:error", (e) => io.log.error({ where: e.where, error: e.error.message }, "engine error"));
  const heartbeatMs = Number(io.env.PURGER_HEARTBEAT_MS ?? 5_000);
  const worker = await startWorker({
    config,
    pool: db.pool,
    events,
    log: io.log,
    heartbeatMs,
    deadAfterMs: Number(io.env.PURGER_DEAD_AFTER_MS ?? heartbeatMs * 6),
    ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
  });
  io.log.info(
    { event: "worker:start", processId: worker.processId, database: db.label, entries: config.entries.map((e) => e.id), concurrency: flags.concurrency ?? config.worker.concurrency },
    "purger is running",
  );
  let exitCode = 0;
  await new Promise<void>((resolve) => {
    const off = onShutdownSignal((signal) => {
      off();
      io.log.info({ signal, timeoutMs: config.worker.shutdownTimeoutMs }, "draining: running batches finish, then purger stops");
      const timer = setTimeout(() => {
        io.log.error({ timeoutMs: config.worker.shutdownTimeoutMs }, "shutdown timeout passed; exiting with batches in flight rolled back");
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
    });
    worker.promise.catch((error: unknown) => {
      io.log.error({ error: error instanceof Error ? error.message : String(error) }, "worker stopped on a fatal error");
      exitCode = 1;
      resolve();
    });
  });
  stopProgress();
  if (exitCode === 0) await db.close();
  return exitCode;
}
