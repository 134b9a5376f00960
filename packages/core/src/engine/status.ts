/**
 * What the cluster is doing, read from the database: runs, bin depth, live
 * processes, entries running right now (for `purger status`, `plan` and the TUI).
 */
import type pg from "pg";
import { binDepth, type BinDepth } from "./bin.js";
import { listRuns, type RunRecord } from "./runs.js";

export interface ProcessInfo {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  startedAt: Date;
  heartbeatAt: Date;
}

export interface EntryStatus {
  entry: string;
  last: RunRecord | null;
  /** The run in progress anywhere in the cluster, if any. */
  running: RunRecord | null;
  failures: number;
}

export interface ClusterStatus {
  processes: ProcessInfo[];
  entries: EntryStatus[];
  bin: BinDepth[];
}

export async function listProcesses(db: pg.Pool): Promise<ProcessInfo[]> {
  const { rows } = await db.query<ProcessInfo>(
    `SELECT id, host, pid, concurrency, started_at AS "startedAt", heartbeat_at AS "heartbeatAt" FROM purger.processes ORDER BY started_at`,
  );
  return rows;
}

export async function clusterStatus(db: pg.Pool, entryIds: string[]): Promise<ClusterStatus> {
  const [processes, bin, recent] = await Promise.all([listProcesses(db), binDepth(db), listRuns(db, { limit: 500 })]);
  const { rows: failures } = await db.query<{ entry: string; n: number }>(
    `SELECT entry, count(*)::int AS n FROM purger.runs WHERE status = 'failed' AND started_at > now() - interval '1 day' GROUP BY entry`,
  );
  const entries = entryIds.map((entry) => {
    const runs = recent.filter((r) => r.entry === entry);
    return {
      entry,
      last: runs.find((r) => r.status !== "running") ?? null,
      running: runs.find((r) => r.status === "running") ?? null,
      failures: failures.find((f) => f.entry === entry)?.n ?? 0,
    };
  });
  return { processes, entries, bin };
}
