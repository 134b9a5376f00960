/**
 * The `table` revoker: one row per revoked serial in a table the CA (or its
 * CRL/OCSP publisher) reads, written in the transaction that marks the
 * certificate `revoked`, so both commit or neither does. Each serial is
 * recorded exactly once: with a unique index on the serial column through
 * `ON CONFLICT DO NOTHING`; without one, under a transaction advisory lock
 * on the serial, so two workers (or two entries) cannot both insert it.
 */
import { leadingIndex, loadTable, requireColumn, type ColumnInfo, type Diagnostic, type TableInfo } from "@purger/core";
import type pg from "pg";
import type { TableRevokerOptions } from "./options.js";
import type { Revoker } from "./revoker.js";

export interface RevocationTable {
  table: TableInfo;
  serial: ColumnInfo;
  reason: ColumnInfo | null;
  revokedAt: ColumnInfo | null;
  /** A valid, non-partial unique index on exactly the serial column exists. */
  unique: boolean;
}

/** Resolve the revocations table: `serial` must exist; `reason` and `revokedAt` are written when they exist (and must when named). */
export async function loadRevocationTable(db: pg.Pool, options: TableRevokerOptions): Promise<RevocationTable> {
  const table = await loadTable(db, options.table, { where: "options.revoker.table.table" });
  const serial = requireColumn(table, options.serial ?? "serial", "options.revoker.table.serial");
  const optional = (name: string | undefined, fallback: string, what: string) =>
    name === undefined ? (table.columns.get(fallback) ?? null) : requireColumn(table, name, what);
  return {
    table,
    serial,
    reason: optional(options.reason, "reason", "options.revoker.table.reason"),
    revokedAt: optional(options.revokedAt, "revoked_at", "options.revoker.table.revokedAt"),
    unique: leadingIndex(table, serial, { unique: true, exact: true }) !== null,
  };
}

export function createTableRevoker(target: RevocationTable): Revoker {
  const columns = [target.serial.sql];
  const values = ["$1"];
  if (target.reason) {
    columns.push(target.reason.sql);
    values.push("$2");
  }
  if (target.revokedAt) {
    columns.push(target.revokedAt.sql);
    values.push("now()");
  }
  const insert = `INSERT INTO ${target.table.sql} (${columns.join(", ")}) VALUES (${values.join(", ")})`;
  const params = (serial: string, reason: string) => (target.reason ? [serial, reason] : [serial]);

  return {
    async revoke({ serial, reason, client }) {
      if (target.unique) {
        await client.query(`${insert} ON CONFLICT DO NOTHING`, params(serial, reason));
        return;
      }
      // No unique index: serialize on (table, serial) until commit, then look before inserting.
      await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`purger-revocation:${target.table.oid}:${serial}`]);
      const { rowCount } = await client.query(`SELECT 1 FROM ${target.table.sql} WHERE ${target.serial.sql} = $1 LIMIT 1`, [serial]);
      if (!rowCount) await client.query(insert, params(serial, reason));
    },
  };
}

export function checkRevocationTable(target: RevocationTable): Diagnostic[] {
  const found: Diagnostic[] = [];
  const { table, serial } = target;
  if (target.unique) {
    found.push({ level: "ok", message: `revocations ${table.display}: unique index on ${serial.name}` });
  } else {
    found.push({
      level: "warn",
      message: `revocations ${table.display}: no unique index on ${serial.name}; each serial is still recorded once (under an advisory lock), but only purger's own writes are protected`,
      hint: `CREATE UNIQUE INDEX CONCURRENTLY ON ${table.sql} (${serial.sql});`,
    });
  }
  if (!table.privileges.insert) {
    found.push({
      level: "error",
      message: `revocations ${table.display}: the database user may not INSERT into it`,
      hint: `GRANT INSERT, SELECT ON ${table.sql} TO <purger's user>;`,
    });
  }
  if (!target.reason) found.push({ level: "warn", message: `revocations ${table.display}: no reason column, reasons are not recorded` });
  return found;
}
