/**
 * What the cluster is doing, read from the database: runs, bin depth, live
 * processes, entries running right now (for `purger status`, `plan` and the TUI).
 */
import type pg from "pg";
import { binDepth, type BinDepth } from "./bin.js";
import { lockedEntries } from "./lock.js";
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
  /** The run some process of the cluster is working on right now (it holds the entry's lock), if any. */
  running: RunRecord | null;
  /**
   * A run left unfinished that no process works on right now: its process died, or it waits
   * for its next slice. The entry's next run resumes it from its checkpoint.
   */
  unfinished?: RunRecord | null;
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
  const [processes, bin, recent, locked] = await Promise.all([
    listProcesses(db),
    binDepth(db),
    listRuns(db, { limit: 500 }),
    lockedEntries(db, entryIds),
  ]);
  const { rows: failures } = await db.query<{ entry: string; n: number }>(
    `SELECT entry, count(*)::int AS n FROM purger.runs WHERE status = 'failed' AND started_at > now() - interval '1 day' GROUP BY entry`,
  );
  const entries = entryIds.map((entry) => {
    const runs = recent.filter((r) => r.entry === entry);
    // A run record says `running` until the run ends, also when its process was killed: only
    // the entry's lock (which dies with its session) tells whether someone works on it now.
    const open = runs.find((r) => r.status === "running") ?? null;
    return {
      entry,
      last: runs.find((r) => r.status !== "running") ?? null,
      running: locked.has(entry) ? open : null,
      unfinished: locked.has(entry) ? null : open,
      failures: failures.find((f) => f.entry === entry)?.n ?? 0,
    };
  });
  return { processes, entries, bin };
}
