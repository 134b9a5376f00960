/**
 * graphile-worker has no heartbeat: a job held by a killed process stays
 * locked (and its named queue blocked) for 4 hours. Each `purger run` process
 * beats in `purger.processes`; every live process releases the jobs of
 * processes that stopped beating (or, in its own pid namespace, whose pid is
 * gone) with `forceUnlockWorkers`. A beat also records the bin kinds the
 * process knows, and gives a job back to items parked for want of a worker
 * that knows their kind.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";
import type { WorkerUtils } from "graphile-worker";
import type pg from "pg";
import type { Logger } from "../log.js";
import { unparkBinItems } from "./bin.js";

export interface HeartbeatOptions {
  pool: pg.Pool;
  utils: WorkerUtils;
  processId: string;
  concurrency: number;
  workerIds: () => string[];
  /** Bin kinds of this process's config. */
  kinds: string[];
  workerSchema: string;
  intervalMs: number;
  deadAfterMs: number;
  onError: (error: Error) => void;
  log: Logger;
}

export function startHeartbeat(options: HeartbeatOptions): { ready: Promise<void>; stop(): Promise<void> } {
  const { pool, processId } = options;
  const host = hostname();
  const namespace = pidNamespace();
  let timer: NodeJS.Timeout | null = null;
  let beating: Promise<void> = Promise.resolve();

  const beat = async () => {
    await pool.query(
      `INSERT INTO purger.processes (id, host, pid, concurrency, worker_ids, kinds, pid_namespace) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), worker_ids = excluded.worker_ids, kinds = excluded.kinds`,
      [processId, host, process.pid, options.concurrency, options.workerIds(), options.kinds, namespace],
    );
    const { rows } = await pool.query<{
      id: string;
      host: string;
      pid: number;
      worker_ids: string[];
      pid_namespace: string | null;
      silent: boolean;
    }>(
      `SELECT id, host, pid, worker_ids, pid_namespace, heartbeat_at < now() - make_interval(secs => $2) AS silent
         FROM purger.processes WHERE id <> $1`,
      [processId, options.deadAfterMs / 1000],
    );
    for (const row of rows) {
      // A pid means something only in its own namespace: containers share host names and pid numbers.
      const dead = row.silent || (namespace !== null && row.pid_namespace === namespace && row.host === host && !pidAlive(row.pid));
      if (!dead) continue;
      if (row.worker_ids.length > 0) await options.utils.forceUnlockWorkers(row.worker_ids);
      await pool.query("DELETE FROM purger.processes WHERE id = $1", [row.id]);
      options.log.warn({ process: row.id, workers: row.worker_ids }, "released the jobs of a dead purger process");
    }
    const unparked = await unparkBinItems(pool, options.workerSchema, options.kinds);
    if (unparked > 0) options.log.info({ items: unparked }, "bin items that waited for a worker knowing their kind are queued again");
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

/**
 * Where this process's pid is meaningful: the boot id and the pid namespace (Linux), so two containers
 * with one host name never judge each other's pids. Null elsewhere: only the heartbeat's age counts.
 */
function pidNamespace(): string | null {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    return `${boot}/${readlinkSync("/proc/self/ns/pid")}`;
  } catch {
    return null;
  }
}
