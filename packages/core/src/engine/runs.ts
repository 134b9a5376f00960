/**
 * The run store: one row of `purger.runs` per run. The checkpoint is written in
 * each batch's own transaction (see run-entry.ts), so it never disagrees with
 * what was deleted.
 */
import { hostname } from "node:os";
import type pg from "pg";
import type { RunStatus, RunTrigger } from "../events.js";
import type { Json } from "../plugin.js";

export interface RunRecord {
  id: string;
  entry: string;
  plugin: string;
  trigger: RunTrigger;
  status: RunStatus;
  dryRun: boolean;
  cutoff: Date | null;
  startedAt: Date;
  finishedAt: Date | null;
  processed: number;
  batches: number;
  slices: number;
  total: number | null;
  tables: Record<string, number> | null;
  checkpoint: Json | null;
  processId: string | null;
  error: string | null;
  guard: string | null;
  durationMs: number | null;
  /** What decided the run (see fingerprint.ts); null for runs recorded before fingerprints. */
  fingerprint?: Json | null;
  /** When the run's guard was found satisfied; null while it has not been (a crash during the count). */
  guardPassedAt?: Date | null;
}

const COLUMNS = `id::text, entry, plugin, trigger, status, dry_run, cutoff, started_at, finished_at, processed,
  batches, slices, total, tables, checkpoint, process_id, error, guard, duration_ms, fingerprint, guard_passed_at`;

interface RunRow {
  id: string;
  entry: string;
  plugin: string;
  trigger: RunTrigger;
  status: RunStatus;
  dry_run: boolean;
  cutoff: Date | null;
  started_at: Date;
  finished_at: Date | null;
  processed: number;
  batches: number;
  slices: number;
  total: number | null;
  tables: Record<string, number> | null;
  checkpoint: Json | null;
  process_id: string | null;
  error: string | null;
  guard: string | null;
  duration_ms: number | null;
  fingerprint: Json | null;
  guard_passed_at: Date | null;
}

function toRecord(row: RunRow): RunRecord {
  return {
    id: row.id,
    entry: row.entry,
    plugin: row.plugin,
    trigger: row.trigger,
    status: row.status,
    dryRun: row.dry_run,
    cutoff: row.cutoff,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    processed: Number(row.processed),
    batches: row.batches,
    slices: row.slices,
    total: row.total === null ? null : Number(row.total),
    tables: row.tables,
    checkpoint: row.checkpoint,
    processId: row.process_id,
    error: row.error,
    guard: row.guard,
    durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    fingerprint: row.fingerprint,
    guardPassedAt: row.guard_passed_at,
  };
}

/** The unfinished run of an entry (a slice ended, or its process died), to resume. Call while holding the entry lock. */
export async function findResumableRun(db: pg.ClientBase, entry: string): Promise<RunRecord | null> {
  const { rows } = await db.query<RunRow>(
    `SELECT ${COLUMNS} FROM purger.runs WHERE entry = $1 AND status = 'running' AND NOT dry_run ORDER BY runs.id DESC LIMIT 1`,
    [entry],
  );
  return rows[0] ? toRecord(rows[0]) : null;
}

export interface NewRun {
  entry: string;
  plugin: string;
  trigger: RunTrigger;
  dryRun: boolean;
  cutoff: Date;
  startedAt: Date;
  processId: string;
}

export interface NewResumableRun extends NewRun {
  fingerprint: object;
  /** False when a guard must still pass before the first change. */
  guardPassed: boolean;
}

export async function insertRun(db: pg.ClientBase, run: NewResumableRun): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO purger.runs (entry, plugin, trigger, status, dry_run, cutoff, started_at, process_id, host, pid, fingerprint, guard_passed_at)
     VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $10::jsonb, CASE WHEN $11::boolean THEN now() END) RETURNING id::text`,
    [
      run.entry,
      run.plugin,
      run.trigger,
      run.dryRun,
      run.cutoff,
      run.startedAt,
      run.processId,
      hostname(),
      process.pid,
      JSON.stringify(run.fingerprint),
      run.guardPassed,
    ],
  );
  return rows[0]!.id;
}

/** The guard passed: from now on a resumed run goes on without counting again. */
export async function markGuardPassed(db: pg.ClientBase, runId: string): Promise<void> {
  await db.query("UPDATE purger.runs SET guard_passed_at = now(), updated_at = now() WHERE id = $1", [runId]);
}

/** Mark a resumed run as owned by this process (a new slice). */
export async function claimRun(db: pg.ClientBase, runId: string, processId: string, total: number | null): Promise<void> {
  await db.query(
    `UPDATE purger.runs SET process_id = $2, host = $3, pid = $4, slices = slices + 1, total = coalesce($5, total), updated_at = now()
      WHERE id = $1`,
    [runId, processId, hostname(), process.pid, total],
  );
}

export async function setRunTotal(db: pg.ClientBase, runId: string, total: number | null): Promise<void> {
  await db.query("UPDATE purger.runs SET total = $2 WHERE id = $1", [runId, total]);
}

/** Written inside the batch's transaction. */
export async function saveCheckpoint(
  db: pg.ClientBase,
  runId: string,
  batch: { processed: number; checkpoint: Json | null; tables: Record<string, number> | null },
): Promise<void> {
  await db.query({
    name: "purger-save-checkpoint",
    text: `UPDATE purger.runs SET checkpoint = $2::jsonb, processed = processed + $3, batches = batches + 1,
               tables = coalesce($4::jsonb, tables), updated_at = now()
              WHERE id = $1`,
    values: [runId, JSON.stringify(batch.checkpoint), batch.processed, batch.tables === null ? null : JSON.stringify(batch.tables)],
  });
}

export interface RunEnd {
  status: Exclude<RunStatus, "running">;
  processed: number;
  batches: number;
  tables: Record<string, number> | null;
  error: string | null;
  guard: string | null;
  durationMs: number;
}

export async function finishRun(db: pg.ClientBase | pg.Pool, runId: string, end: RunEnd): Promise<void> {
  await db.query(
    `UPDATE purger.runs SET status = $2, processed = $3, batches = $4, tables = coalesce($5::jsonb, tables), error = $6,
            guard = $7, duration_ms = $8, finished_at = now(), updated_at = now()
      WHERE id = $1`,
    [
      runId,
      end.status,
      end.processed,
      end.batches,
      end.tables === null ? null : JSON.stringify(end.tables),
      end.error,
      end.guard,
      end.durationMs,
    ],
  );
}

/** A finished dry run, recorded in one statement (dry runs write nothing while they work). */
export async function insertFinishedRun(db: pg.Pool | pg.ClientBase, run: NewRun & RunEnd): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO purger.runs (entry, plugin, trigger, status, dry_run, cutoff, started_at, finished_at, updated_at, processed,
                              batches, tables, error, guard, duration_ms, process_id, host, pid)
     VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now(), $8, $9, $10::jsonb, $11, $12, $13, $14, $15, $16) RETURNING id::text`,
    [
      run.entry,
      run.plugin,
      run.trigger,
      run.status,
      run.dryRun,
      run.cutoff,
      run.startedAt,
      run.processed,
      run.batches,
      run.tables === null ? null : JSON.stringify(run.tables),
      run.error,
      run.guard,
      run.durationMs,
      run.processId,
      hostname(),
      process.pid,
    ],
  );
  return rows[0]!.id;
}

export async function listRuns(db: pg.Pool, options: { entry?: string; limit?: number } = {}): Promise<RunRecord[]> {
  const { rows } = await db.query<RunRow>(
    `SELECT ${COLUMNS} FROM purger.runs WHERE ($1::text IS NULL OR entry = $1) ORDER BY runs.id DESC LIMIT $2`,
    [options.entry ?? null, options.limit ?? 20],
  );
  return rows.map(toRecord);
}

/** Delete run records (and finished bin items) older than `keepMs`. */
export async function pruneRuns(db: pg.Pool, keepMs: number): Promise<number> {
  const { rowCount } = await db.query(
    "DELETE FROM purger.runs WHERE status <> 'running' AND started_at < now() - make_interval(secs => $1)",
    [keepMs / 1000],
  );
  await db.query("DELETE FROM purger.bin WHERE status IN ('done', 'dropped') AND finished_at < now() - make_interval(secs => $1)", [
    keepMs / 1000,
  ]);
  return rowCount ?? 0;
}
