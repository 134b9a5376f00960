/**
 * What the live database says about the tables a certs entry names. Names are
 * bound as parameters in every lookup; they become SQL text only later,
 * quoted with `quoteIdent`, once the catalog has confirmed them.
 */
import { assertUniqueKey, parseQualifiedName, PurgerError, quoteIdent } from "@purger/core";
import type pg from "pg";

export type Queryable = pg.Pool | pg.ClientBase;

export interface ColumnInfo {
  name: string;
  num: number;
  /** `format_type()` of the column, for messages and comparisons. */
  type: string;
  /** `typname` of the type, or of a domain's base type: `timestamptz`, `int8` … */
  baseType: string;
  /** `pg_type.typtype`: `e` for an enum. */
  typtype: string;
  typeOid: number;
  /** The quoted column name. */
  sql: string;
}

export interface IndexInfo {
  name: string;
  /** Key column numbers in order; 0 for an expression. */
  columns: number[];
  unique: boolean;
  partial: boolean;
  valid: boolean;
}

export interface TableInfo {
  oid: number;
  /** The quoted, schema-qualified name. */
  sql: string;
  /** `schema.name` for messages. */
  display: string;
  /** As the catalog names it, unquoted. */
  schema: string;
  name: string;
  columns: Map<string, ColumnInfo>;
  indexes: IndexInfo[];
  primaryKey: ColumnInfo[] | null;
  privileges: { select: boolean; insert: boolean; update: boolean };
}

/** Split `name` or `schema.name` (core's rules). */
export const parseTableName = parseQualifiedName;

/**
 * Look a table up (in the search_path when no schema is given) with its
 * columns, indexes and the current user's privileges.
 * @param what names the option for messages (`certificates.table`).
 */
export async function loadTable(db: Queryable, text: string, what: string): Promise<TableInfo> {
  const ref = parseTableName(text);
  if (!ref) {
    throw new PurgerError("CONFIG", `options.${what}: expected "name" or "schema.name", found ${JSON.stringify(text)}`);
  }
  const { rows } = await db.query<{ oid: number; schema: string; name: string; sel: boolean; ins: boolean; upd: boolean }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name,
            has_table_privilege(c.oid, 'SELECT') AS sel,
            has_table_privilege(c.oid, 'INSERT') AS ins,
            has_table_privilege(c.oid, 'UPDATE') AS upd
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'f')
        AND CASE WHEN $1::text IS NULL THEN n.nspname = ANY (pg_catalog.current_schemas(false)) ELSE n.nspname = $1 END
      ORDER BY pg_catalog.array_position(pg_catalog.current_schemas(false), n.nspname)
      LIMIT 1`,
    [ref.schema, ref.name],
  );
  const found = rows[0];
  if (!found) {
    throw new PurgerError("TARGET", `options.${what}: table ${JSON.stringify(text)} does not exist`, {
      hint: ref.schema === null ? "check the name, or qualify it with its schema (schema.name)" : "check the schema and table name",
    });
  }
  const columns = await db.query<{ name: string; num: number; type: string; base_type: string; typtype: string; type_oid: number }>(
    `SELECT a.attname AS name, a.attnum::int AS num, format_type(a.atttypid, a.atttypmod) AS type,
            COALESCE(b.typname, t.typname) AS base_type, t.typtype::text AS typtype, t.oid::int AS type_oid
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_catalog.pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [found.oid],
  );
  const indexes = await db.query<{ name: string; columns: number[]; unique: boolean; primary: boolean; partial: boolean; valid: boolean }>(
    `SELECT ic.relname AS name, string_to_array(i.indkey::text, ' ')::int[] AS columns,
            i.indisunique AS unique, i.indisprimary AS primary, i.indpred IS NOT NULL AS partial, i.indisvalid AS valid
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
      WHERE i.indrelid = $1
      ORDER BY ic.relname`,
    [found.oid],
  );
  const byName = new Map<string, ColumnInfo>();
  for (const c of columns.rows) {
    byName.set(c.name, {
      name: c.name,
      num: c.num,
      type: c.type,
      baseType: c.base_type,
      typtype: c.typtype,
      typeOid: c.type_oid,
      sql: quoteIdent(c.name),
    });
  }
  const byNum = new Map([...byName.values()].map((c) => [c.num, c]));
  const pk = indexes.rows.find((i) => i.primary);
  const primaryKey = pk ? pk.columns.map((n) => byNum.get(n)).filter((c): c is ColumnInfo => c !== undefined) : null;
  return {
    oid: found.oid,
    sql: `${quoteIdent(found.schema)}.${quoteIdent(found.name)}`,
    display: `${found.schema}.${found.name}`,
    schema: found.schema,
    name: found.name,
    columns: byName,
    indexes: indexes.rows.map((i) => ({ name: i.name, columns: i.columns, unique: i.unique, partial: i.partial, valid: i.valid })),
    primaryKey,
    privileges: { select: found.sel, insert: found.ins, update: found.upd },
  };
}

/** The column, or a TARGET error naming the option. */
export function requireColumn(table: TableInfo, name: string, what: string): ColumnInfo {
  const column = table.columns.get(name);
  if (!column) {
    const near = closest(name, [...table.columns.keys()]);
    throw new PurgerError("TARGET", `options.${what}: column ${JSON.stringify(name)} does not exist in ${table.display}`, {
      hint: near ? `did you mean "${near}"?` : `its columns: ${[...table.columns.keys()].join(", ")}`,
    });
  }
  return column;
}

/**
 * The `key` option's column, else the single-column primary key. A key named
 * explicitly must be NOT NULL and unique (core's one check), or an update by
 * key could reach rows that do not qualify.
 */
export async function keyColumn(db: Queryable, table: TableInfo, key: string | undefined, what: string): Promise<ColumnInfo> {
  if (key !== undefined) {
    const column = requireColumn(table, key, `${what}.key`);
    await assertUniqueKey(db, { table: { schema: table.schema, name: table.name }, columns: [column.name], option: `${what}.key` });
    return column;
  }
  const pk = table.primaryKey;
  if (!pk || pk.length !== 1) {
    throw new PurgerError("TARGET", `options.${what}.key: ${table.display} has ${pk ? "a composite" : "no"} primary key`, {
      hint: `set ${what}.key to a unique, NOT NULL column`,
    });
  }
  return pk[0]!;
}

/** Whether a valid index has `column` as its first key column (unique ones only when asked). */
export function hasLeadingIndex(table: TableInfo, column: ColumnInfo, options: { unique?: boolean; whole?: boolean } = {}): boolean {
  return table.indexes.some(
    (i) =>
      i.valid && i.columns[0] === column.num && (!options.unique || (i.unique && !i.partial)) && (!options.whole || i.columns.length === 1),
  );
}

/** Labels of an enum type, or null when the column is not an enum. */
export async function enumLabels(db: Queryable, column: ColumnInfo): Promise<string[] | null> {
  if (column.typtype !== "e") return null;
  const { rows } = await db.query<{ label: string }>(
    "SELECT enumlabel AS label FROM pg_catalog.pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder",
    [column.typeOid],
  );
  return rows.map((r) => r.label);
}

function closest(name: string, candidates: string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
