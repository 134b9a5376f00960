/**
 * The stale-uploads sweep (SPEC §1 scenario 3): rows of a presigned-upload
 * table whose flag is still false after the retention are locked (`FOR UPDATE
 * SKIP LOCKED`), their object deleted if it exists, the row deleted, and the
 * batch committed by the core. One failing item never stops the sweep: it is
 * logged, left in place and stepped over by the keyset cursor. Also the
 * `upload { id }` bin handler that cancels one upload at once.
 */
import {
  PurgerError,
  type BatchContext,
  type BatchResult,
  type BinContext,
  type BinResult,
  type Cursor,
  type Logger,
  type RunContext,
} from "@purger/core";
import pLimit from "p-limit";
import type pg from "pg";
import type { UploadsTable } from "./catalog.js";
import { deleteObject, type Bucket, type ObjectOutcome } from "./delete.js";
import type { BlobOptions, UploadPayload } from "./options.js";
import { describeError } from "./s3.js";
import type { BlobState } from "./state.js";

export interface UploadsStatements {
  first: string;
  next: string;
  deleteRows: string;
  deleteRow: string;
  count: string;
  countAll: string;
  lockOne: string;
}

/** Every statement of the sweep, written out once the catalog confirmed the names. Values are always bound. */
export function uploadsStatements(t: UploadsTable): UploadsStatements {
  const select = `SELECT u.${t.key.sql}::text AS id, u.${t.objectKey.sql}::text AS object_key, to_jsonb(u.${t.column.sql}) #>> '{}' AS at,
            (extract(epoch FROM (now() - u.${t.column.sql})) * 1000)::float8 AS age_ms
       FROM ${t.sql} u
      WHERE u.${t.flag.sql} = false AND u.${t.column.sql} < $1::timestamptz`;
  const tail = `ORDER BY u.${t.column.sql}, u.${t.key.sql} LIMIT $2 FOR UPDATE OF u SKIP LOCKED`;
  return {
    first: `${select}\n      ${tail}`,
    next: `${select}\n        AND (u.${t.column.sql}, u.${t.key.sql}) > ($3::text::${t.column.typeSql}, $4::text::${t.key.typeSql})\n      ${tail}`,
    deleteRows: `DELETE FROM ${t.sql} u WHERE u.${t.key.sql} = ANY ($1::text[]::${t.key.typeSql}[])`,
    deleteRow: `DELETE FROM ${t.sql} u WHERE u.${t.key.sql} = $1::text::${t.key.typeSql}`,
    count: `SELECT count(*)::int8 AS n FROM (SELECT 1 FROM ${t.sql} u WHERE u.${t.flag.sql} = false AND u.${t.column.sql} < $1::timestamptz LIMIT $2) s`,
    countAll: `SELECT count(*)::int8 AS n FROM ${t.sql}`,
    lockOne: `SELECT u.${t.key.sql}::text AS id, u.${t.objectKey.sql}::text AS object_key, u.${t.flag.sql} AS flag,
            (extract(epoch FROM (now() - u.${t.column.sql})) * 1000)::float8 AS age_ms
       FROM ${t.sql} u WHERE u.${t.key.sql} = $1::text::${t.key.typeSql} FOR UPDATE OF u`,
  };
}

interface Row {
  id: string;
  object_key: string | null;
  at: string;
  age_ms: number | null;
}

/** The sweep's cursor: the last row seen, as text the column types parse back exactly (ISO 8601 for the clock, whatever DateStyle). */
interface UploadsCursor {
  at: string;
  id: string;
}

type Outcome = ObjectOutcome | "no-key" | "failed" | "dry-run";

export interface UploadsDeps {
  table: UploadsTable;
  sql: UploadsStatements;
}

/** One batch of the sweep. */
export async function sweepBatch(ctx: BatchContext<BlobOptions, BlobState>, uploads: UploadsDeps): Promise<BatchResult> {
  const cursor = readCursor(ctx.cursor);
  const { rows } = cursor
    ? await ctx.client.query<Row>(uploads.sql.next, [ctx.cutoff, ctx.batchSize, cursor.at, cursor.id])
    : await ctx.client.query<Row>(uploads.sql.first, [ctx.cutoff, ctx.batchSize]);
  const last = rows.at(-1);
  const nextCursor: Cursor | null = last ? { at: last.at, id: last.id } : (ctx.cursor ?? null);
  const done = rows.length < ctx.batchSize;
  const logItem = (row: Row, outcome: Outcome, error?: string) => {
    const line = { id: row.id, key: row.object_key, ageMs: row.age_ms === null ? null : Math.round(row.age_ms), outcome };
    if (error === undefined) ctx.log.info(line, `stale upload ${outcome}`);
    else ctx.log.warn({ ...line, error }, "stale upload not deleted; left for the next run");
  };

  if (ctx.dryRun) {
    // The core rolls the transaction back; no object is touched.
    for (const row of rows) logItem(row, "dry-run");
    return { processed: rows.length, cursor: nextCursor, done, sample: rows.slice(0, 5).map((r) => r.id) };
  }

  // Objects first, `concurrency` at a time; a row goes only once its object is gone.
  const bucket = bucketOf(ctx);
  const limit = pLimit(ctx.options.concurrency);
  const objects = await Promise.all(
    rows.map((row) =>
      limit(async (): Promise<{ outcome: Outcome; deleted: number } | { error: string }> => {
        if (row.object_key === null || row.object_key === "") return { outcome: "no-key", deleted: 0 };
        try {
          return await deleteObject(bucket, row.object_key);
        } catch (error) {
          return { error: `object ${row.object_key}: ${error instanceof Error ? error.message : describeError(error)}` };
        }
      }),
    ),
  );
  const ready = rows.filter((_, i) => !("error" in objects[i]!));
  const rowErrors = await deleteRows(
    ctx.client,
    uploads.sql,
    ready.map((r) => r.id),
  );

  let processed = 0;
  let objectsDeleted = 0;
  let failed = 0;
  rows.forEach((row, i) => {
    const result = objects[i]!;
    const error = "error" in result ? result.error : rowErrors.get(row.id);
    if (error !== undefined) {
      failed += 1;
      logItem(row, "failed", error);
      return;
    }
    if (!("error" in result)) objectsDeleted += result.deleted;
    processed += 1;
    logItem(row, (result as { outcome: Outcome }).outcome);
  });
  if (failed > 0) ctx.log.warn({ event: "uploads:failed", failed, processed }, `${failed} stale upload(s) could not be deleted this batch`);
  const tables: Record<string, number> = { [uploads.table.display]: processed, objects: objectsDeleted };
  if (failed > 0) tables["failed"] = failed;
  return { processed, cursor: nextCursor, done, tables };
}

/**
 * Delete the rows whose objects are gone: one statement under a savepoint;
 * if it fails (a foreign key, a trigger), row by row so only the culprits
 * stay. Returns the error of each row that could not be deleted.
 */
async function deleteRows(client: pg.ClientBase, sql: UploadsStatements, ids: string[]): Promise<Map<string, string>> {
  const errors = new Map<string, string>();
  if (ids.length === 0) return errors;
  await client.query("SAVEPOINT purger_uploads");
  try {
    await client.query(sql.deleteRows, [ids]);
    await client.query("RELEASE SAVEPOINT purger_uploads");
    return errors;
  } catch {
    await client.query("ROLLBACK TO SAVEPOINT purger_uploads");
  }
  for (const id of ids) {
    try {
      await client.query(sql.deleteRow, [id]);
      await client.query("RELEASE SAVEPOINT purger_uploads");
      await client.query("SAVEPOINT purger_uploads");
    } catch (error) {
      await client.query("ROLLBACK TO SAVEPOINT purger_uploads");
      errors.set(id, `row: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  await client.query("RELEASE SAVEPOINT purger_uploads");
  return errors;
}

/** Stale rows, capped at `limit` (guards, estimate). */
export async function countStale(ctx: RunContext<BlobOptions, BlobState>, sql: UploadsStatements, limit: number | null): Promise<number> {
  const { rows } = await ctx.pool.query<{ n: number }>(sql.count, [ctx.cutoff, limit]);
  return Number(rows[0]!.n);
}

/**
 * `<id>.upload { id }`: cancel one pending upload now, whatever its age —
 * lock the row, delete its object, delete the row, commit. An upload that
 * completed meanwhile is refused (a visible failure, nothing deleted); one
 * that is already gone is done.
 */
export async function cancelUpload(
  ctx: BinContext<BlobOptions, BlobState>,
  payload: UploadPayload,
  uploads: UploadsDeps,
): Promise<BinResult> {
  const id = String(payload.id);
  const bucket = bucketOf(ctx);
  return ctx.transaction(async (client) => {
    // Wait for a sweep holding the row, but not forever: the bin retries later.
    await client.query("SET LOCAL lock_timeout = '10s'");
    let row: { id: string; object_key: string | null; flag: boolean; age_ms: number | null } | undefined;
    try {
      ({
        rows: [row],
      } = await client.query(uploads.sql.lockOne, [id]));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "22P02" || code === "22003") {
        throw new PurgerError(
          "PAYLOAD",
          `upload id ${JSON.stringify(payload.id)} is not a valid ${uploads.table.key.type} (${uploads.table.display}.${uploads.table.key.name})`,
        );
      }
      throw error;
    }
    const line = { id, ageMs: row?.age_ms == null ? null : Math.round(row.age_ms), cancelled: true };
    if (!row) {
      ctx.log.info({ ...line, key: null, outcome: "not-found" }, "upload to cancel is already gone");
      return { processed: 0 };
    }
    if (row.flag) {
      throw new PurgerError(
        "PAYLOAD",
        `upload ${id} of ${uploads.table.display} is no longer pending (${uploads.table.flag.name} is true): nothing deleted`,
        {
          hint: "a completed upload is deleted by the application, not by cancelling it",
        },
      );
    }
    const object = row.object_key ? await deleteObject(bucket, row.object_key) : { outcome: "no-key" as const, deleted: 0 };
    await client.query(uploads.sql.deleteRow, [id]);
    ctx.log.info({ ...line, key: row.object_key, outcome: object.outcome }, "upload cancelled");
    return { processed: 1, tables: { [uploads.table.display]: 1, objects: object.deleted } };
  });
}

function bucketOf(ctx: { state: BlobState; options: BlobOptions; signal: AbortSignal; log: Logger }): Bucket {
  return {
    client: ctx.state.client,
    bucket: ctx.options.bucket,
    versioned: ctx.state.versioning.versioned,
    signal: ctx.signal,
    log: ctx.log,
  };
}

function readCursor(cursor: Cursor | null): UploadsCursor | null {
  if (cursor === null || typeof cursor !== "object" || Array.isArray(cursor)) return null;
  const { at, id } = cursor as Record<string, unknown>;
  return typeof at === "string" && typeof id === "string" ? { at, id } : null;
}
