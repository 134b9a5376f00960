/**
 * Revoking one certificate, the rule every path shares (the `revoke` and
 * `credential` bin handlers, the sweep's pending revocations): on a row locked
 * `FOR UPDATE` in the caller's transaction, a known serial is revoked now
 * (revoker, then `revoked`, in that transaction); an unknown serial marks the
 * row `revoking` for the sweep; a revoked row is left alone.
 */
import type { Logger } from "@purger/core";
import type pg from "pg";
import { idempotencyKey } from "./revoker.js";
import type { CertsState } from "./state.js";

/** What revoking a certificate did: revoked now, deferred (`revoking`), or nothing (already so). */
export type RevokeOutcome = "revoked" | "deferred" | "unchanged";

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

/** Apply the revocation rule to a row the caller has locked. */
export async function revokeLocked(input: RevokeLockedInput): Promise<RevokeOutcome> {
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
