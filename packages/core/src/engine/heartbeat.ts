/**
 * graphile-worker has no heartbeat: a job held by a killed process stays
 * locked (and its named queue blocked) for 4 hours. Each `purger run` process
 * beats in `purger.processes`; every live process releases the jobs of
 * processes that stopped beating (or, on this host, whose pid is gone) with
 * `forceUnlockWorkers`.
 */
import { hostname } from "node:os";
import type { WorkerUtils } from "graphile-worker";
import type pg from "pg";
import type { Logger } from "../log.js";

export interface HeartbeatOptions {
  pool: pg.Pool;
  utils: WorkerUtils;
  processId: string;
  concurrency: number;
  workerIds: () => string[];
  intervalMs: number;
  deadAfterMs: number;
  onError: (error: Error) => void;
  log: Logger;
}

export function startHeartbeat(options: HeartbeatOptions): { ready: Promise<void>; stop(): Promise<void> } {
  const { pool, processId } = options;
  const host = hostname();
  let timer: NodeJS.Timeout | null = null;
  let beating: Promise<void> = Promise.resolve();

  const beat = async () => {
    await pool.query(
      `INSERT INTO purger.processes (id, host, pid, concurrency, worker_ids) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), worker_ids = excluded.worker_ids`,
      [processId, host, process.pid, options.concurrency, options.workerIds()],
    );
    const { rows } = await pool.query<{ id: string; host: string; pid: number; worker_ids: string[]; silent: boolean }>(
      `SELECT id, host, pid, worker_ids, heartbeat_at < now() - make_interval(secs => $2) AS silent
         FROM purger.processes WHERE id <> $1`,
      [processId, options.deadAfterMs / 1000],
    );
    for (const row of rows) {
      const dead = row.silent || (row.host === host && !pidAlive(row.pid));
      if (!dead) continue;
      if (row.worker_ids.length > 0) await options.utils.forceUnlockWorkers(row.worker_ids);
      await pool.query("DELETE FROM purger.processes WHERE id = $1", [row.id]);
      options.log.warn({ process: row.id, workers: row.worker_ids }, "released the jobs of a dead purger process");
    }
  };

  const tick = () => {
    beating = beat().catch((error: unknown) => options.onError(error instanceof Error ? error : new Error(String(error))));
  };
  tick();
  const ready = beating;
  timer = setInterval(tick, options.intervalMs);
  timer.unref();

  return {
    ready,
    async stop() {
      if (timer) clearInterval(timer);
      await beating;
      await pool.query("DELETE FROM purger.processes WHERE id = $1", [processId]).catch(() => {});
    },
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
