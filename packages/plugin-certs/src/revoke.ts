/**
 * Revoking one certificate, the rules every path shares. The bin handlers
 * (`revoke`, `credential`) apply `revokeLocked` to a row they locked `FOR
 * UPDATE`: a known serial is revoked now (revoker, then `revoked`, in that
 * transaction) — or, for an `external` revoker, by `revokeExternally` once
 * that transaction has ended; an unknown serial marks the row `revoking` for
 * the sweep; a revoked row is left alone. The sweep applies
 * `revokePendingRow` to a `revoking` row it read without a lock: an external
 * revoker is called with no transaction open and no row locked, any other in
 * a short transaction holding just that row; either way the row is marked
 * `revoked` only if it is still `revoking` with that serial.
 */
import type { Logger } from "@purger/core";
import type pg from "pg";
import { idempotencyKey } from "./revoker.js";
import type { CertsState } from "./state.js";

/**
 * How long a transaction of this plugin waits for a lock (a row, a revocation's
 * unique index entry, an advisory lock) before it fails and is retried later,
 * rather than queue behind a transaction that may hold it for minutes.
 */
export const LOCK_TIMEOUT = "5s";

/** Limit the lock waits of the caller's transaction to `LOCK_TIMEOUT`. */
export async function limitLockWait(client: pg.ClientBase): Promise<void> {
  await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
}

/** Whether PostgreSQL gave up waiting for a lock (`lock_timeout`, or `NOWAIT`). */
export function isLockTimeout(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === "55P03";
}

/** What revoking a certificate did: revoked now, deferred (`revoking`), or nothing (already so). */
export type RevokeOutcome = "revoked" | "deferred" | "unchanged";

/** `revokeLocked`'s answer: an outcome, or `call` — an external revoker is to be called once the transaction has ended. */
export type LockedOutcome = RevokeOutcome | "call";

export interface CertificateRow {
  id: string;
  /** The serial as text, null while unknown (NULL or empty). */
  serial: string | null;
  status: string | null;
  /** The reason kept for a deferred revocation (when `certificates.reason` is set). */
  reason: string | null;
}

/** The reason sent when nobody gave one (RFC 5280's name for reason code 0). */
export const DEFAULT_REASON = "unspecified";

/** SELECT list of a certificate row (`c` is the table's alias). */
export function certificateColumns(state: CertsState): string {
  const c = state.certificates;
  return `c.${c.key.sql}::text AS id, NULLIF(c.${c.serial.sql}::text, '') AS serial, c.${c.status.sql}::text AS status, ${
    c.reason ? `c.${c.reason.sql}::text` : "NULL::text"
  } AS reason`;
}

/** Lock the certificates with these keys (in key order, so two transactions never deadlock on them). */
export async function lockCertificates(client: pg.ClientBase, state: CertsState, ids: Array<string | number>): Promise<CertificateRow[]> {
  const c = state.certificates;
  const { rows } = await client.query<CertificateRow>(
    `SELECT ${certificateColumns(state)} FROM ${c.table.sql} c WHERE c.${c.key.sql} = ANY ($1) ORDER BY c.${c.key.sql} FOR UPDATE`,
    [ids],
  );
  return rows;
}

export interface RevokeLockedInput {
  client: pg.ClientBase;
  state: CertsState;
  row: CertificateRow;
  /** The reason given now (null: the stored one, else `unspecified`). */
  reason: string | null;
  signal: AbortSignal;
  log: Logger;
}

/**
 * Apply the revocation rule to a row the caller has locked. With an `external`
 * revoker and a known serial nothing is changed: the caller commits, then
 * `revokeExternally`, so no lock is held while the other system answers.
 */
export async function revokeLocked(input: RevokeLockedInput): Promise<LockedOutcome> {
  const { client, state, row } = input;
  const { statuses } = state;
  const c = state.certificates;
  if (row.status === statuses.revoked) return "unchanged";

  if (row.serial === null) {
    const keepReason = c.reason !== null && input.reason !== null && row.reason === null;
    if (row.status === statuses.revoking) {
      // Already pending: the first reason given stays, but a reason never replaces none with nothing.
      if (keepReason) await client.query(`UPDATE ${c.table.sql} SET ${c.reason!.sql} = $2 WHERE ${c.key.sql} = $1`, [row.id, input.reason]);
      return "unchanged";
    }
    const setReason = c.reason !== null && input.reason !== null;
    await client.query(
      `UPDATE ${c.table.sql} SET ${c.status.sql} = $2${setReason ? `, ${c.reason!.sql} = $3` : ""} WHERE ${c.key.sql} = $1`,
      [row.id, statuses.revoking, ...(setReason ? [input.reason] : [])],
    );
    input.log.info({ event: "certs:revoke:deferred", certificate: row.id }, "serial unknown: certificate marked for revocation");
    return "deferred";
  }

  if (state.revoker.external) return "call";
  const reason = input.reason ?? row.reason ?? DEFAULT_REASON;
  await state.revoker.revoke({
    serial: row.serial,
    reason,
    idempotencyKey: idempotencyKey(row.serial),
    certificateId: row.id,
    client,
    signal: input.signal,
    log: input.log,
  });
  await client.query(`UPDATE ${c.table.sql} SET ${c.status.sql} = $2 WHERE ${c.key.sql} = $1`, [row.id, statuses.revoked]);
  input.log.info({ event: "certs:revoke:done", certificate: row.id, serial: row.serial, reason }, "certificate revoked");
  return "revoked";
}

export interface RevokePendingInput {
  pool: pg.Pool;
  state: CertsState;
  /** A `revoking` row with a serial, as read (unlocked) by the sweep. */
  row: CertificateRow & { serial: string };
  signal: AbortSignal;
  log: Logger;
}

/**
 * Revoke a pending certificate without holding its row while the revoker
 * works: `revoked` when this call settled it, `skipped` when another
 * transaction holds the row or settled it meanwhile (an `external` revoker may
 * then have been called twice for the serial: delivery is at least once).
 */
export async function revokePendingRow(input: RevokePendingInput): Promise<"revoked" | "skipped"> {
  const { state, row } = input;
  const c = state.certificates;
  const reason = row.reason ?? DEFAULT_REASON;
  if (state.revoker.external) {
    const done = await revokeExternally({ ...input, reason, from: state.statuses.revoking });
    return done ? "revoked" : "skipped";
  }
  const done = await shortTransaction(input.pool, async (client) => {
    const { rowCount } = await client.query(
      `SELECT 1 FROM ${c.table.sql} WHERE ${c.key.sql} = $1 AND ${c.status.sql} = $2 AND NULLIF(${c.serial.sql}::text, '') = $3
        FOR UPDATE SKIP LOCKED`,
      [row.id, state.statuses.revoking, row.serial],
    );
    if (!rowCount) return false;
    await state.revoker.revoke(revokeRequest(input, reason, client));
    return markRevoked(client, state, row, state.statuses.revoking);
  });
  if (done) logRevoked(input.log, row, reason);
  return done ? "revoked" : "skipped";
}

export interface RevokeExternallyInput {
  pool: pg.Pool;
  state: CertsState;
  row: CertificateRow & { serial: string };
  reason: string;
  /** Mark it revoked only from this status (the sweep: `revoking`); null: from any status but revoked. */
  from: string | null;
  signal: AbortSignal;
  log: Logger;
}

/**
 * Call an `external` revoker with no transaction open and no row locked, then
 * mark the certificate `revoked` in a short transaction, if it still has that
 * serial (and the `from` status). False when someone else settled it meanwhile.
 */
export async function revokeExternally(input: RevokeExternallyInput): Promise<boolean> {
  const client = await input.pool.connect();
  try {
    await input.state.revoker.revoke(revokeRequest(input, input.reason, client));
  } finally {
    client.release();
  }
  const done = await shortTransaction(input.pool, (tx) => markRevoked(tx, input.state, input.row, input.from));
  if (done) logRevoked(input.log, input.row, input.reason);
  return done;
}

function revokeRequest(
  input: { row: CertificateRow & { serial: string }; signal: AbortSignal; log: Logger },
  reason: string,
  client: pg.ClientBase,
) {
  return {
    serial: input.row.serial,
    reason,
    idempotencyKey: idempotencyKey(input.row.serial),
    certificateId: input.row.id,
    client,
    signal: input.signal,
    log: input.log,
  };
}

async function markRevoked(
  client: pg.ClientBase,
  state: CertsState,
  row: CertificateRow & { serial: string },
  from: string | null,
): Promise<boolean> {
  const c = state.certificates;
  const { rowCount } = await client.query(
    `UPDATE ${c.table.sql} SET ${c.status.sql} = $3
      WHERE ${c.key.sql} = $1 AND NULLIF(${c.serial.sql}::text, '') = $2 AND ${
        from === null ? `${c.status.sql} IS DISTINCT FROM $3` : `${c.status.sql} = $4`
      }`,
    [row.id, row.serial, state.statuses.revoked, ...(from === null ? [] : [from])],
  );
  return (rowCount ?? 0) > 0;
}

/** One transaction on its own connection, its lock waits limited; committed when `fn` resolves. */
async function shortTransaction<T>(pool: pg.Pool, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let healthy = true;
  try {
    await client.query("BEGIN");
    try {
      await limitLockWait(client);
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        healthy = false;
      });
      throw error;
    }
  } finally {
    client.release(!healthy);
  }
}

function logRevoked(log: Logger, row: CertificateRow, reason: string): void {
  log.info({ event: "certs:revoke:done", certificate: row.id, serial: row.serial, reason }, "certificate revoked");
}
