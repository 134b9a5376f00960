/**
 * The bin: a durable deletion queue. Items live in `purger.bin` (their visible
 * state) and each pending item has a graphile-worker job (`purger:bin`) whose
 * insert wakes an idle worker through LISTEN/NOTIFY. Handlers are at least
 * once and must be idempotent; an item that fails its last attempt stays
 * visible as `failed` until `purger bin retry|drop`.
 */
import type pg from "pg";
import { payloadValidator } from "../config/resolve-plugin.js";
import type { EntryConfig } from "../config/types.js";
import { MAX_PAYLOAD_BYTES, BIN_JOB_PRIORITY, BIN_TASK } from "../db/migrations.js";
import { quoteIdent } from "../db/quote.js";
import { PurgerError } from "../errors.js";
import type { AnyPlugin, BinHandler, Json } from "../plugin.js";

const MAX_DEPTH = 32;

export interface BinKind {
  kind: string;
  entry: EntryConfig;
  handlerName: string;
  handler: BinHandler<unknown, unknown, unknown>;
}

/** Every `<entry id>.<handler>` kind of a config's entries. */
export function binKinds(entries: EntryConfig[]): BinKind[] {
  const kinds: BinKind[] = [];
  for (const entry of entries) {
    for (const [handlerName, handler] of Object.entries(entry.plugin.bin ?? {})) {
      kinds.push({ kind: `${entry.id}.${handlerName}`, entry, handlerName, handler });
    }
  }
  return kinds;
}

/** Check a payload against its handler: an object, ≤ 64 KiB, not absurdly deep, valid for the schema. Returns the payload with defaults. */
export function validatePayload(kind: BinKind, payload: unknown): Record<string, Json> {
  const where = `bin payload for ${kind.kind}`;
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
    throw new PurgerError(
      "PAYLOAD",
      `${where}: expected a JSON object, found ${payload === null ? "null" : Array.isArray(payload) ? "an array" : typeof payload}`,
    );
  }
  // Before JSON.stringify: it recurses, and a payload nested thousands deep would overflow the stack.
  const unstorable = unstorableIn(payload, "", 0);
  if (unstorable !== null) throw new PurgerError("PAYLOAD", `${where}: ${unstorable}`);
  const text = JSON.stringify(payload);
  if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) {
    throw new PurgerError("PAYLOAD", `${where}: ${Buffer.byteLength(text)} bytes, more than the limit of ${MAX_PAYLOAD_BYTES}`);
  }
  const value = JSON.parse(text) as Record<string, Json>;
  const validate = payloadValidator(kind.handler);
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map(
      (e) =>
        `${e.instancePath || "/"} ${e.message}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`,
    );
    throw new PurgerError("PAYLOAD", `${where}: ${problems.join("; ")}`, { hint: "see `purger schema` for the payload of each kind" });
  }
  const extra = kind.handler.validate?.(value, kind.entry.options);
  if (extra) throw new PurgerError("PAYLOAD", `${where}: ${extra}`);
  return value;
}

/**
 * Why PostgreSQL's jsonb could not take a value, or null: nesting past MAX_DEPTH (found without
 * recursing further), or a string or key holding \u0000 or an unpaired UTF-16 surrogate.
 */
function unstorableIn(value: unknown, path: string, depth: number): string | null {
  if (typeof value === "string") return unstorableText(value, path || "/");
  if (value === null || typeof value !== "object") return null;
  if (depth >= MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
  for (const [key, child] of Object.entries(value)) {
    const at = `${path}/${visible(key.replaceAll("~", "~0").replaceAll("/", "~1"))}`;
    const problem = (Array.isArray(value) ? null : unstorableText(key, `the key ${at}`)) ?? unstorableIn(child, at, depth + 1);
    if (problem !== null) return problem;
  }
  return null;
}

/** A key as a message can show it: control characters (a NUL) as \uXXXX escapes. */
function visible(key: string): string {
  let out = "";
  for (const char of key) {
    const code = char.charCodeAt(0);
    out += code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, "0")}` : char;
  }
  return out;
}

const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function unstorableText(text: string, at: string): string | null {
  if (text.includes("\u0000")) return `${at} holds \\u0000, which PostgreSQL cannot store in JSON`;
  if (UNPAIRED_SURROGATE.test(text)) return `${at} holds an unpaired UTF-16 surrogate, which PostgreSQL cannot store in JSON`;
  return null;
}

/**
 * Put an item in the bin through `purger.enqueue` — inside the caller's transaction when given a client.
 * When `kinds` is given (purger itself is the caller), the payload is validated first.
 */
export async function enqueue(db: pg.ClientBase | pg.Pool, kind: string, payload: unknown, kinds?: BinKind[]): Promise<string> {
  let value = payload;
  if (kinds) {
    const found = kinds.find((k) => k.kind === kind);
    if (!found) {
      throw new PurgerError("PAYLOAD", `unknown bin kind "${kind}"`, {
        hint: `known kinds: ${kinds.map((k) => k.kind).join(", ") || "(none)"}`,
      });
    }
    value = validatePayload(found, payload);
  }
  try {
    const { rows } = await db.query<{ id: string }>("SELECT purger.enqueue($1, $2::jsonb)::text AS id", [kind, JSON.stringify(value)]);
    return rows[0]!.id;
  } catch (error) {
    const pgError = error as { code?: string; message?: string; hint?: string };
    if (pgError.code === "22023" || pgError.code === "54000") {
      throw new PurgerError("PAYLOAD", pgError.message ?? String(error), { hint: pgError.hint, cause: error });
    }
    throw error;
  }
}

export interface BinItem {
  id: string;
  kind: string;
  payload: Record<string, Json>;
  status: "pending" | "done" | "failed" | "dropped";
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  checkpoint: Json | null;
  processed: number;
  createdAt: Date;
  finishedAt: Date | null;
}

const ITEM_COLUMNS = `id::text, kind, payload, status, attempts, max_attempts AS "maxAttempts", last_error AS "lastError", checkpoint,
  processed, created_at AS "createdAt", finished_at AS "finishedAt"`;

export async function getBinItem(db: pg.ClientBase | pg.Pool, id: string): Promise<BinItem | null> {
  const { rows } = await db.query<BinItem>(`SELECT ${ITEM_COLUMNS} FROM purger.bin WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

export async function listBinItems(
  db: pg.Pool,
  options: { status?: BinItem["status"]; kind?: string; limit?: number } = {},
): Promise<BinItem[]> {
  const { rows } = await db.query<BinItem>(
    `SELECT ${ITEM_COLUMNS} FROM purger.bin
      WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
      ORDER BY bin.id LIMIT $3`,
    [options.status ?? null, options.kind ?? null, options.limit ?? 100],
  );
  return rows;
}

export interface BinDepth {
  kind: string;
  pending: number;
  failed: number;
  /** Age of the oldest pending item in ms, null when none is pending. */
  oldestMs: number | null;
  /** Pending items that wait, without a job, for a live worker that knows their kind; absent when none. */
  parked?: number;
}

export async function binDepth(db: pg.Pool | pg.ClientBase): Promise<BinDepth[]> {
  const { rows } = await db.query<{ kind: string; pending: number; failed: number; oldest_ms: number | null; parked: number }>(
    `SELECT k.kind,
            count(b.id) FILTER (WHERE b.status = 'pending')::int AS pending,
            count(b.id) FILTER (WHERE b.status = 'pending' AND b.parked_at IS NOT NULL)::int AS parked,
            count(b.id) FILTER (WHERE b.status = 'failed')::int AS failed,
            (extract(epoch FROM now() - min(b.created_at) FILTER (WHERE b.status = 'pending')) * 1000)::float8 AS oldest_ms
       FROM (SELECT kind FROM purger.bin_kinds UNION SELECT DISTINCT kind FROM purger.bin WHERE status IN ('pending', 'failed')) k
       LEFT JOIN purger.bin b ON b.kind = k.kind AND b.status IN ('pending', 'failed')
      GROUP BY k.kind ORDER BY k.kind`,
  );
  return rows.map((r) => ({
    kind: r.kind,
    pending: r.pending,
    failed: r.failed,
    oldestMs: r.oldest_ms === null ? null : Math.round(r.oldest_ms),
    ...(r.parked > 0 ? { parked: r.parked } : {}),
  }));
}

/** Put failed items back in the queue (all failed items, or those ids). Returns how many. */
export async function retryBinItems(db: pg.Pool, workerSchema: string, ids?: string[]): Promise<number> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query<{ id: string }>(
      `UPDATE purger.bin SET status = 'pending', attempts = 0, last_error = NULL, updated_at = now(), finished_at = NULL
        WHERE status = 'failed' AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) RETURNING id::text`,
      [ids ?? null],
    );
    for (const { id } of rows) await addBinJob(client, workerSchema, id);
    await client.query("COMMIT");
    return rows.length;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Give up failed items for good (kept as `dropped` for the record). Returns how many. */
export async function dropBinItems(db: pg.Pool, ids?: string[]): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE purger.bin SET status = 'dropped', updated_at = now(), finished_at = now()
      WHERE status = 'failed' AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))`,
    [ids ?? null],
  );
  return rowCount ?? 0;
}

/**
 * Add the graphile-worker job that has an item handled. With `kind`, the job is the kind's own task,
 * which only workers whose config has the kind take (see `forwardBinItem`).
 */
export async function addBinJob(
  db: pg.ClientBase | pg.Pool,
  workerSchema: string,
  itemId: string,
  runAt?: Date,
  kind?: string,
): Promise<void> {
  await db.query(
    `SELECT ${quoteIdent(workerSchema)}.add_job($1, json_build_object('item', $2::text), run_at := $3, max_attempts := 10, priority := $4)`,
    [kind === undefined ? BIN_TASK : binKindTask(kind), itemId, runAt ?? null, BIN_JOB_PRIORITY],
  );
}

/** The task of one kind's jobs: registered only by the workers that can handle the kind. */
export function binKindTask(kind: string): string {
  return `${BIN_TASK}:${kind}`;
}

/**
 * Take a pending item for one handler: count the attempt and record the handler's claim, which every
 * later write of that handler checks (`WHERE claimed_by = claim`), so a handler that lost the item to
 * another one never overwrites the other's outcome. Null when the item is no longer pending.
 */
export async function claimBinItem(db: pg.Pool, id: string, claim: string): Promise<{ item: BinItem; claimedAt: Date } | null> {
  // The database's clock at the claim is the handler's start time (`startedAt`): no second round trip to read it.
  const { rows } = await db.query<BinItem & { claimedAt: Date }>(
    `UPDATE purger.bin SET attempts = attempts + 1, claimed_by = $2, parked_at = NULL, updated_at = now()
      WHERE id = $1 AND status = 'pending' RETURNING ${ITEM_COLUMNS}, clock_timestamp() AS "claimedAt"`,
    [id, claim],
  );
  const row = rows[0];
  if (!row) return null;
  const { claimedAt, ...item } = row;
  return { item, claimedAt };
}

/** Whether a live process other than `processId` (it beat within `deadAfterMs`) has `kind` in its config. */
export async function liveWorkerKnows(db: pg.Pool, processId: string, kind: string, deadAfterMs: number): Promise<boolean> {
  const { rows } = await db.query<{ known: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM purger.processes
                     WHERE id <> $1 AND $2 = ANY(kinds) AND heartbeat_at > now() - make_interval(secs => $3)) AS known`,
    [processId, kind, deadAfterMs / 1000],
  );
  return rows[0]?.known === true;
}

/** The message of an item parked because no live worker knows its kind. */
export function unknownKindMessage(kind: string): string {
  return `no running worker knows kind "${kind}" (its entry is not in their purger.yaml)`;
}

/** Leave a pending item without a job until a worker that knows its kind starts (`unparkBinItems`). */
export async function parkBinItem(db: pg.Pool, id: string, kind: string): Promise<void> {
  await db.query(
    "UPDATE purger.bin SET parked_at = now(), last_error = $2, updated_at = now() WHERE id = $1 AND status = 'pending' AND parked_at IS NULL",
    [id, unknownKindMessage(kind)],
  );
}

/** Give parked items of `kinds` (those this process knows) a job again. Returns how many, at most `limit` a call. */
export async function unparkBinItems(db: pg.Pool, workerSchema: string, kinds: string[], limit = 10_000): Promise<number> {
  if (kinds.length === 0) return 0;
  const { rows } = await db.query<{ n: number }>(
    `WITH parked AS (
       SELECT id FROM purger.bin WHERE parked_at IS NOT NULL AND kind = ANY($1::text[]) AND status = 'pending'
        ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
     ), unparked AS (
       UPDATE purger.bin b SET parked_at = NULL, last_error = NULL, updated_at = now() FROM parked WHERE b.id = parked.id
       RETURNING b.id, b.kind
     )
     SELECT count(*)::int AS n FROM unparked,
       LATERAL ${quoteIdent(workerSchema)}.add_job($3 || ':' || unparked.kind, json_build_object('item', unparked.id::text),
                                                 max_attempts := 10, priority := $4) AS job`,
    [kinds, limit, BIN_TASK, BIN_JOB_PRIORITY],
  );
  return rows[0]?.n ?? 0;
}

/** Find the kind of a config for an item, or null. */
export function findKind(kinds: BinKind[], kind: string): BinKind | null {
  return kinds.find((k) => k.kind === kind) ?? null;
}

export type { AnyPlugin };
