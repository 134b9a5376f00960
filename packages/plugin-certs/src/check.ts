/**
 * `purger doctor` for a certs entry. `prepare` has already confirmed every
 * table and column (or failed with TARGET); this looks at what makes a sweep
 * wrong or slow: status values the entry does not know (or an enum that lacks
 * one), missing indexes, privileges, and the revoker itself.
 */
import { leadingIndex, type ColumnInfo, type Diagnostic, type PluginContext, type TableInfo } from "@purger/core";
import type { CertsOptions } from "./options.js";
import type { CertsState } from "./state.js";
import { checkRevocationTable } from "./table-revoker.js";

const MAX_SHOWN_VALUES = 20;

export async function checkEntry(ctx: PluginContext<CertsOptions> & { state: CertsState }): Promise<Diagnostic[]> {
  const { state, pool } = ctx;
  const found: Diagnostic[] = [];
  const c = state.certificates;
  const s = state.statuses;

  found.push(...privileges(c.table, "certificates"));
  found.push(...(await statusValues(ctx, c.table, c.status, "certificates", [s.active, s.expired, s.revoking, s.revoked])));
  if (leadingIndex(c.table, c.notAfter)) {
    found.push({ level: "ok", message: `certificates ${c.table.display}: index on ${c.notAfter.name}` });
  } else {
    found.push({
      level: "warn",
      message: `certificates ${c.table.display}: no index on ${c.notAfter.name}, so every sweep reads the whole table to find expired certificates`,
      hint: `CREATE INDEX CONCURRENTLY ON ${c.table.sql} (${c.notAfter.sql});`,
    });
  }

  found.push(...wallClock(state, c.table, c.notAfter, "certificates"));

  const waiting = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${c.table.sql} WHERE ${c.status.sql} = $1 AND NULLIF(${c.serial.sql}::text, '') IS NULL`,
    [s.revoking],
  );
  const n = waiting.rows[0]?.n ?? 0;
  if (n > 0) {
    found.push({
      level: "ok",
      message: `certificates ${c.table.display}: ${n} wait for their serial to be revoked (the sweep revokes each when it appears)`,
    });
  }

  const cr = state.credentials;
  if (cr) {
    const cs = state.credentialStatuses;
    found.push(...privileges(cr.table, "credentials"));
    found.push(...(await statusValues(ctx, cr.table, cr.status, "credentials", [cs.active, cs.expired, cs.revoked])));
    if (cr.expiresAt) found.push(...wallClock(state, cr.table, cr.expiresAt, "credentials"));
    for (const reference of cr.references) {
      if (reference.type.display !== c.key.type.display) {
        found.push({
          level: "warn",
          message: `credentials ${cr.table.display}: ${reference.name} is ${reference.type.display} but certificates' key ${c.key.name} is ${c.key.type.display}`,
        });
      }
    }
  }

  if (state.revocations) found.push(...checkRevocationTable(state.revocations));
  if (state.revoker.check) found.push(...(await state.revoker.check({ pool, signal: ctx.signal })));
  return found;
}

/** A column without a zone is compared as wall-clock time in `timeZone`: say so, since a wrong zone shifts every expiry. */
function wallClock(state: CertsState, table: TableInfo, column: ColumnInfo, what: string): Diagnostic[] {
  if (column.type.base === "timestamptz") return [];
  const kind = column.type.base === "date" ? "a date" : "a timestamp without time zone";
  return [
    {
      level: "ok",
      message: `${what} ${table.display}: ${column.name} is ${kind}, read as wall-clock time in ${state.timeZone} (option timeZone)`,
    },
  ];
}

function privileges(table: TableInfo, what: string): Diagnostic[] {
  if (table.privileges.select && table.privileges.update) return [];
  return [
    {
      level: "error",
      message: `${what} ${table.display}: the database user may not ${table.privileges.select ? "UPDATE" : "SELECT"} it`,
      hint: `GRANT SELECT, UPDATE ON ${table.sql} TO <purger's user>;`,
    },
  ];
}

/** The statuses must fit the column (enum labels) and the values in the table should all be known ones. */
async function statusValues(
  ctx: PluginContext<CertsOptions>,
  table: TableInfo,
  column: ColumnInfo,
  what: string,
  known: string[],
): Promise<Diagnostic[]> {
  const found: Diagnostic[] = [];
  const labels = column.type.labels;
  if (labels) {
    const missing = known.filter((value) => !labels.includes(value));
    if (missing.length > 0) {
      found.push({
        level: "error",
        message: `${what} ${table.display}: ${column.name} is the enum ${column.type.display} without ${missing.map((v) => JSON.stringify(v)).join(", ")}; an update to it would fail`,
        hint: `set the entry's statuses to its labels (${labels.join(", ")}), or ALTER TYPE ${column.type.display} ADD VALUE …`,
      });
    }
  }
  const { rows } = await ctx.pool.query<{ value: string | null }>(
    `SELECT DISTINCT ${column.sql}::text AS value FROM ${table.sql} LIMIT ${MAX_SHOWN_VALUES + 1}`,
  );
  const unknown = rows.map((r) => r.value).filter((v) => v === null || !known.includes(v));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, MAX_SHOWN_VALUES).map((v) => (v === null ? "NULL" : JSON.stringify(v)));
    found.push({
      level: "warn",
      message: `${what} ${table.display}: ${column.name} holds values the entry does not know (${shown.join(", ")}${unknown.length > MAX_SHOWN_VALUES ? ", …" : ""}); those rows are left alone`,
      hint: `the entry's statuses are ${known.map((v) => JSON.stringify(v)).join(", ")}; set \`statuses\` if the table uses other words`,
    });
  } else {
    found.push({ level: "ok", message: `${what} ${table.display}: every ${column.name} value is a known status` });
  }
  return found;
}
