/**
 * The stale-uploads sweep (a presigned-upload workflow, see the README): rows of a presigned-upload
 * table whose flag is still false after the retention are locked (`FOR UPDATE
 * SKIP LOCKED`) and deleted, each under its own savepoint, so one failing row
 * never stops the sweep: it is logged, left in place and stepped over by the
 * keyset cursor. The objects are not touched here: for each row really gone
 * whose key no remaining row uses, an `<id>.object` bin item is enqueued in
 * the batch's own transaction (an outbox). It commits with the row deletes or
 * rolls back with them, and the bin deletes the object after the commit,
 * with its retries and visible failed state. A crash can so leave an orphaned
 * object (deleted later by its bin item), never a row whose object is gone.
 * Also the `upload { id }` bin handler that cancels one upload at once, in
 * the same order.
 */
import {
  enqueue,
  PurgerError,
  type BatchContext,
  type BatchResult,
  type BinContext,
  type BinResult,
  type Cursor,
  type RunContext,
} from "@purger/core";
import type pg from "pg";
import type { Queryable, UploadsTable } from "./catalog.js";
import type { BlobOptions, UploadPayload } from "./options.js";
import type { BlobState } from "./state.js";

export interface UploadsStatements {
  first: string;
  next: string;
  deleteRows: string;
  deleteRow: string;
  keysInUse: string;
  count: string;
  countAll: string;
  lockOne: string;
  /**
   * The last parameter of `first`, `next`, `count` and `lockOne`: the zone a
   * `timestamp`/`date` clock is written in; empty for `timestamptz`.
   */
  zone: string[];
}

/** Every statement of the sweep, written out once the catalog confirmed the names. Values are always bound. */
export function uploadsStatements(t: UploadsTable, timeZone: string): UploadsStatements {
  const zoned = t.column.type.base !== "timestamptz";
  // A clock without time zone holds wall-clock times of `timeZone`: the cutoff is converted (the column is not, so its index serves),
  // whatever the session's TimeZone is.
  const cutoff = (n: number) => (zoned ? `($1::timestamptz AT TIME ZONE $${n}::text)` : "$1::timestamptz");
  const age = (n: number) =>
    `(extract(epoch FROM (now() - ${zoned ? `(u.${t.column.sql} AT TIME ZONE $${n}::text)` : `u.${t.column.sql}`})) * 1000)::float8`;
  const select = (
    n: number,
  ) => `SELECT u.${t.key.sql}::text AS id, u.${t.objectKey.sql}::text AS object_key, to_jsonb(u.${t.column.sql}) #>> '{}' AS at,
            ${age(n)} AS age_ms
       FROM ${t.sql} u
      WHERE u.${t.flag.sql} = false AND u.${t.column.sql} < ${cutoff(n)}`;
  const tail = `ORDER BY u.${t.column.sql}, u.${t.key.sql} LIMIT $2 FOR UPDATE OF u SKIP LOCKED`;
  return {
    first: `${select(3)}\n      ${tail}`,
    next: `${select(5)}\n        AND (u.${t.column.sql}, u.${t.key.sql}) > ($3::text::${t.column.type.sql}, $4::text::${t.key.type.sql})\n      ${tail}`,
    deleteRows: `DELETE FROM ${t.sql} u WHERE u.${t.key.sql} = ANY ($1::text[]::${t.key.type.sql}[]) RETURNING u.${t.key.sql}::text AS id`,
    deleteRow: `DELETE FROM ${t.sql} u WHERE u.${t.key.sql} = $1::text::${t.key.type.sql} RETURNING u.${t.key.sql}::text AS id`,
    keysInUse: `SELECT DISTINCT u.${t.objectKey.sql}::text AS object_key FROM ${t.sql} u WHERE u.${t.objectKey.sql} = ANY ($1::text[]::${t.objectKey.type.sql}[])`,
    count: `SELECT count(*)::int8 AS n FROM (SELECT 1 FROM ${t.sql} u WHERE u.${t.flag.sql} = false AND u.${t.column.sql} < ${cutoff(3)} LIMIT $2) s`,
    countAll: `SELECT count(*)::int8 AS n FROM ${t.sql}`,
    lockOne: `SELECT u.${t.key.sql}::text AS id, u.${t.objectKey.sql}::text AS object_key, u.${t.flag.sql} AS flag,
            ${age(2)} AS age_ms
       FROM ${t.sql} u WHERE u.${t.key.sql} = $1::text::${t.key.type.sql} FOR UPDATE OF u`,
    zone: zoned ? [timeZone] : [],
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

/**
 * What became of one stale upload: `queued` (row deleted, its object's delete
 * in the bin), `shared` (row deleted, another row still uses the key: the
 * object stays), `no-key`, `failed` (row kept), `dry-run`.
 */
type Outcome = "queued" | "shared" | "no-key" | "failed" | "dry-run";

export interface UploadsDeps {
  table: UploadsTable;
  sql: UploadsStatements;
}

/** One batch of the sweep. */
export async function sweepBatch(ctx: BatchContext<BlobOptions, BlobState>, uploads: UploadsDeps): Promise<BatchResult> {
  const cursor = readCursor(ctx.cursor);
  const { rows } = cursor
    ? await ctx.client.query<Row>(uploads.sql.next, [ctx.cutoff, ctx.batchSize, cursor.at, cursor.id, ...uploads.sql.zone])
    : await ctx.client.query<Row>(uploads.sql.first, [ctx.cutoff, ctx.batchSize, ...uploads.sql.zone]);
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

  const { deleted, errors } = await deleteRows(
    ctx.client,
    uploads.sql,
    rows.map((r) => r.id),
  );
  const gone = rows.filter((r) => deleted.has(r.id));
  const candidates = [...new Set(gone.map((r) => r.object_key).filter((k): k is string => k !== null && k !== ""))];
  // After this batch's deletes, in its transaction: a key another row still uses (a completed upload, a retry) keeps its object.
  const inUse = new Set(
    candidates.length === 0
      ? []
      : (await ctx.client.query<{ object_key: string }>(uploads.sql.keysInUse, [candidates])).rows.map((r) => r.object_key),
  );
  const queued = candidates.filter((k) => !inUse.has(k));
  for (const key of queued) await enqueueObject(ctx.client, ctx.entry.id, key);

  let processed = 0;
  let failed = 0;
  for (const row of rows) {
    if (!deleted.has(row.id)) {
      failed += 1;
      logItem(row, "failed", errors.get(row.id) ?? "row: not deleted (a trigger skipped it)");
      continue;
    }
    processed += 1;
    logItem(row, row.object_key === null || row.object_key === "" ? "no-key" : inUse.has(row.object_key) ? "shared" : "queued");
  }
  if (failed > 0) ctx.log.warn({ event: "uploads:failed", failed, processed }, `${failed} stale upload(s) could not be deleted this batch`);
  const tables: Record<string, number> = { [uploads.table.display]: processed, "objects queued": queued.length };
  if (failed > 0) tables["failed"] = failed;
  return { processed, cursor: nextCursor, done, tables };
}

/**
 * Delete the rows, each under its own savepoint (a foreign key or a trigger
 * refusing one row leaves the others deleted) — one statement first, row by
 * row only when it fails. Returns the rows really deleted (a BEFORE DELETE
 * trigger may skip one silently) and the error of each row that failed.
 */
async function deleteRows(
  client: pg.ClientBase,
  sql: UploadsStatements,
  ids: string[],
): Promise<{ deleted: Set<string>; errors: Map<string, string> }> {
  const deleted = new Set<string>();
  const errors = new Map<string, string>();
  if (ids.length === 0) return { deleted, errors };
  await client.query("SAVEPOINT purger_uploads");
  try {
    const { rows } = await client.query<{ id: string }>(sql.deleteRows, [ids]);
    await client.query("RELEASE SAVEPOINT purger_uploads");
    for (const row of rows) deleted.add(row.id);
    return { deleted, errors };
  } catch {
    await client.query("ROLLBACK TO SAVEPOINT purger_uploads");
  }
  for (const id of ids) {
    try {
      const { rows } = await client.query<{ id: string }>(sql.deleteRow, [id]);
      await client.query("RELEASE SAVEPOINT purger_uploads");
      await client.query("SAVEPOINT purger_uploads");
      for (const row of rows) deleted.add(row.id);
    } catch (error) {
      await client.query("ROLLBACK TO SAVEPOINT purger_uploads");
      errors.set(id, `row: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  await client.query("RELEASE SAVEPOINT purger_uploads");
  return { deleted, errors };
}

/** The object's delete, as an `<id>.object` bin item in the caller's transaction (it commits or rolls back with the row's delete). */
async function enqueueObject(client: pg.ClientBase, entryId: string, key: string): Promise<void> {
  await enqueue(client, `${entryId}.object`, { key });
}

/** Whether a row of the uploads table uses this object key (the `.object` handler's last check before deleting). */
export async function objectKeyInUse(db: Queryable, uploads: UploadsDeps, key: string): Promise<boolean> {
  const { rows } = await db.query(uploads.sql.keysInUse, [[key]]);
  return rows.length > 0;
}

/** Stale rows, capped at `limit` (guards, estimate). */
export async function countStale(ctx: RunContext<BlobOptions, BlobState>, sql: UploadsStatements, limit: number | null): Promise<number> {
  const { rows } = await ctx.pool.query<{ n: number }>(sql.count, [ctx.cutoff, limit, ...sql.zone]);
  return Number(rows[0]!.n);
}

/**
 * `<id>.upload { id }`: cancel one pending upload now, whatever its age —
 * lock the row, delete it and, when no other row uses its key, enqueue its
 * object's delete in the same transaction (the bin deletes the object after
 * the commit, as for the sweep). An upload that completed meanwhile is
 * refused (a visible failure, nothing deleted); one that is already gone is
 * done.
 */
export async function cancelUpload(
  ctx: BinContext<BlobOptions, BlobState>,
  payload: UploadPayload,
  uploads: UploadsDeps,
): Promise<BinResult> {
  const id = String(payload.id);
  return ctx.transaction(async (client) => {
    // Wait for a sweep holding the row, but not forever: the bin retries later.
    await client.query("SET LOCAL lock_timeout = '10s'");
    let row: { id: string; object_key: string | null; flag: boolean; age_ms: number | null } | undefined;
    try {
      ({
        rows: [row],
      } = await client.query(uploads.sql.lockOne, [id, ...uploads.sql.zone]));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "22P02" || code === "22003") {
        throw new PurgerError(
          "PAYLOAD",
          `upload id ${JSON.stringify(payload.id)} is not a valid ${uploads.table.key.type.base} (${uploads.table.display}.${uploads.table.key.name})`,
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
    const { rows: deleted } = await client.query(uploads.sql.deleteRow, [id]);
    if (deleted.length === 0) {
      throw new PurgerError(
        "TARGET",
        `upload ${id} of ${uploads.table.display} was not deleted (a trigger skipped it): its object is kept`,
      );
    }
    let outcome: Outcome = "no-key";
    if (row.object_key) {
      outcome = (await objectKeyInUse(client, uploads, row.object_key)) ? "shared" : "queued";
      if (outcome === "queued") await enqueueObject(client, ctx.entry.id, row.object_key);
    }
    ctx.log.info({ ...line, key: row.object_key, outcome }, "upload cancelled");
    return { processed: 1, tables: { [uploads.table.display]: 1, "objects queued": outcome === "queued" ? 1 : 0 } };
  });
}

function readCursor(cursor: Cursor | null): UploadsCursor | null {
  if (cursor === null || typeof cursor !== "object" || Array.isArray(cursor)) return null;
  const { at, id } = cursor as Record<string, unknown>;
  return typeof at === "string" && typeof id === "string" ? { at, id } : null;
}
