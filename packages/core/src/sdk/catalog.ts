/**
 * What the live database says about the tables a plugin's options name:
 * schema-qualified names, columns with their types (and the quoted names
 * casts use), NOT NULL, primary keys, indexes and the current user's
 * privileges — plus the checks every plugin makes of them, with messages that
 * name the option and suggest what was probably meant.
 *
 * Every lookup binds the names as parameters; names only become SQL text
 * later, quoted, once the catalog confirmed them (`TableInfo.sql`,
 * `ColumnInfo.sql`, `TypeInfo.sql`).
 */
import type pg from "pg";
import { didYouMean } from "../config/errors.js";
import { assertUniqueKey } from "../db/unique-key.js";
import { parseQualifiedName, quoteIdent } from "../db/quote.js";
import { PurgerError } from "../errors.js";

/** A pool or a client (inside a transaction or not). */
export type Queryable = pg.Pool | pg.ClientBase;

/** A table as written in the options, split into its parts. */
export interface TableRef {
  /** null: searched in the search_path. */
  schema: string | null;
  name: string;
  /** As written, for messages. */
  text: string;
}

export interface TypeInfo {
  /** Unquoted `typname`, e.g. `timestamptz`, `int8`, `status_enum`. */
  name: string;
  schema: string;
  /** The quoted, schema-qualified name used in casts: `"pg_catalog"."timestamptz"`. */
  sql: string;
  /** `format_type()` of the column (with its modifier), for messages: `timestamp with time zone`, `character varying(40)`. */
  display: string;
  /** `pg_type.typcategory`: D datetime, N numeric, S string, E enum, U user (uuid) … */
  category: string;
  /** `typname` of the base type for a domain, else `name`. */
  base: string;
  /** The labels of an enum type, in order; null for other types. */
  labels: string[] | null;
}

export interface ColumnInfo {
  name: string;
  /** `attnum`: what `IndexInfo.columns` holds. */
  num: number;
  notNull: boolean;
  type: TypeInfo;
  /** The quoted column name. */
  sql: string;
}

export interface IndexInfo {
  name: string;
  /** Key column numbers in order; 0 for an expression. */
  columns: number[];
  primary: boolean;
  unique: boolean;
  /** False after a failed `CREATE INDEX CONCURRENTLY`: the planner ignores it. */
  valid: boolean;
  /** Has a `WHERE` predicate. */
  partial: boolean;
  /** `btree`, `gin`, `brin` … */
  method: string;
}

export interface TableInfo {
  oid: number;
  schema: string;
  name: string;
  /** `relkind`: r table, p partitioned table, v view, m materialized view, f foreign table. */
  kind: string;
  /** The quoted, schema-qualified name: `"public"."oauth2_access_tokens"`. */
  sql: string;
  /** For messages and per-table counts: `public.oauth2_access_tokens` (parts quoted only where needed). */
  display: string;
  columns: Map<string, ColumnInfo>;
  /** Primary key first, then by name. */
  indexes: IndexInfo[];
  /** Primary key columns in index order, or null. */
  primaryKey: ColumnInfo[] | null;
  /** What the current user may do with the table. */
  privileges: { select: boolean; insert: boolean; update: boolean; delete: boolean };
}

/** Split `name` or `schema.name` (core's quoting rules), keeping the text as written; null when it is not a name. */
export function parseTableName(text: string): TableRef | null {
  const parsed = parseQualifiedName(text);
  return parsed ? { ...parsed, text } : null;
}

/** A name as PostgreSQL would need it typed: quoted only when it must be. */
export function displayIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name);
}

/**
 * Look tables up (in the search_path when no schema is given, first match
 * wins as PostgreSQL would), with their columns and indexes, in three queries
 * however many. A missing table is `null` at its position.
 */
export async function loadTables(db: Queryable, refs: TableRef[]): Promise<Array<TableInfo | null>> {
  const found = await db.query<{
    i: string;
    oid: number;
    schema: string;
    name: string;
    kind: string;
    sel: boolean;
    ins: boolean;
    upd: boolean;
    del: boolean;
  }>(
    `SELECT r.i, c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
            pg_catalog.has_table_privilege(c.oid, 'SELECT') AS sel, pg_catalog.has_table_privilege(c.oid, 'INSERT') AS ins,
            pg_catalog.has_table_privilege(c.oid, 'UPDATE') AS upd, pg_catalog.has_table_privilege(c.oid, 'DELETE') AS del
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(schema, name, i)
       CROSS JOIN LATERAL (
         SELECT c.oid, c.relname, c.relkind, c.relnamespace
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = r.name
            AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            AND CASE WHEN r.schema IS NULL THEN n.nspname = ANY (pg_catalog.current_schemas(false))
                     ELSE n.nspname = r.schema END
          ORDER BY pg_catalog.array_position(pg_catalog.current_schemas(false), n.nspname)
          LIMIT 1) c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`,
    [refs.map((r) => r.schema), refs.map((r) => r.name)],
  );
  const oids = [...new Set(found.rows.map((r) => Number(r.oid)))];
  const [columns, indexes] = await Promise.all([loadColumns(db, oids), loadIndexes(db, oids)]);

  const byOid = new Map<number, TableInfo>();
  for (const row of found.rows) {
    const oid = Number(row.oid);
    if (byOid.has(oid)) continue;
    const cols = columns.get(oid) ?? new Map<string, ColumnInfo>();
    const idx = indexes.get(oid) ?? [];
    const pk = idx.find((i) => i.primary);
    const byNum = new Map([...cols.values()].map((c) => [c.num, c]));
    byOid.set(oid, {
      oid,
      schema: row.schema,
      name: row.name,
      kind: row.kind,
      sql: `${quoteIdent(row.schema)}.${quoteIdent(row.name)}`,
      display: `${displayIdent(row.schema)}.${displayIdent(row.name)}`,
      columns: cols,
      indexes: idx,
      primaryKey: pk ? pk.columns.map((n) => byNum.get(n)).filter((c): c is ColumnInfo => c !== undefined) : null,
      privileges: { select: row.sel, insert: row.ins, update: row.upd, delete: row.del },
    });
  }
  const byIndex = new Map(found.rows.map((r) => [Number(r.i) - 1, byOid.get(Number(r.oid)) ?? null]));
  return refs.map((_, i) => byIndex.get(i) ?? null);
}

/** Tables whose name matches case-insensitively, as `schema.name` (for "did you mean"). */
export async function similarTables(db: Queryable, ref: Pick<TableRef, "schema" | "name">): Promise<string[]> {
  const result = await db.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE lower(c.relname) = lower($1) AND c.relkind IN ('r', 'p')
        AND ($2::text IS NULL OR lower(n.nspname) = lower($2))
      ORDER BY 1, 2 LIMIT 5`,
    [ref.name, ref.schema],
  );
  return result.rows.map((r) => `${displayIdent(r.schema)}.${displayIdent(r.name)}`);
}

export interface LoadTableOptions {
  /** The option that names the table, for messages: `options.certificates.table`. */
  where: string;
  /** The relkinds accepted (default: any table, view or foreign table); another is a CONFIG error. */
  kinds?: readonly string[];
}

/**
 * Look one table up by `name` or `schema.name`. Throws CONFIG for text that
 * is not a table name or a relation of another kind, TARGET (with "did you
 * mean" when a table differs only in case) for a missing one.
 */
export async function loadTable(db: Queryable, text: string, options: LoadTableOptions): Promise<TableInfo> {
  const { where } = options;
  const ref = parseTableName(text);
  if (!ref) {
    throw new PurgerError("CONFIG", `${where}: ${JSON.stringify(text)} is not a table name`, {
      hint: 'write `name` or `schema.name`; double-quote a part that holds a dot: `"my.schema".uploads`',
    });
  }
  const [table] = await loadTables(db, [ref]);
  if (!table) {
    const similar = await similarTables(db, ref);
    throw new PurgerError("TARGET", `${where}: table ${JSON.stringify(text)} does not exist`, {
      hint:
        similar.length > 0
          ? `did you mean ${similar.map((s) => `"${s}"`).join(" or ")}? Names are matched exactly (case included)`
          : ref.schema === null
            ? "without a schema it is searched in the search_path; check the name, or write `schema.name`"
            : "check the schema and table name",
    });
  }
  if (options.kinds && !options.kinds.includes(table.kind)) {
    throw new PurgerError("CONFIG", `${where}: ${table.display} is not a table (relkind ${table.kind})`, {
      hint: "name the table itself, not a view",
    });
  }
  return table;
}

/** The column named `name` (exactly, or written double-quoted), else null. */
export function findColumn(table: TableInfo, name: string): ColumnInfo | null {
  return table.columns.get(name) ?? (/^".*"$/s.test(name) ? table.columns.get(name.slice(1, -1).replaceAll('""', '"')) : undefined) ?? null;
}

/** The column of `table` a misspelt `name` most likely meant, if any. */
export function suggestColumn(table: TableInfo, name: string): string | undefined {
  return didYouMean(name, table.columns.keys());
}

/**
 * The column, or a TARGET error naming the option, with "did you mean" or
 * the table's columns. With `types`, its type (a domain's base type) must be
 * one of them, else a TARGET error naming `expected`.
 */
export function requireColumn(
  table: TableInfo,
  name: string,
  where: string,
  types?: { accept: ReadonlySet<string> | readonly string[]; expected: string },
): ColumnInfo {
  const column = findColumn(table, name);
  if (!column) {
    const near = suggestColumn(table, name);
    throw new PurgerError("TARGET", `${where}: column ${JSON.stringify(name)} does not exist in ${table.display}`, {
      hint: near ? `did you mean "${near}"?` : `its columns: ${[...table.columns.keys()].join(", ")}`,
    });
  }
  if (types) {
    const accept = new Set(types.accept);
    if (!accept.has(column.type.base)) {
      throw new PurgerError(
        "TARGET",
        `${where}: column ${JSON.stringify(name)} of ${table.display} is ${column.type.display}, expected ${types.expected}`,
      );
    }
  }
  return column;
}

/**
 * The row key: the column named by the `key` option, which must be NOT NULL
 * and unique (`assertUniqueKey`), else the table's single-column primary key.
 * A statement that selects, locks or deletes rows by a key that is neither
 * could reach rows that do not qualify. Throws TARGET.
 * @param option the key option, as `assertUniqueKey` names it: `certificates.key`.
 * @param where the key option as the plugin's messages name it (default `options.<option>`).
 */
export async function keyColumn(
  db: Queryable,
  table: TableInfo,
  key: string | undefined,
  option: string,
  where = `options.${option}`,
): Promise<ColumnInfo> {
  if (key !== undefined) {
    const column = requireColumn(table, key, where);
    await assertUniqueKey(db, { table: { schema: table.schema, name: table.name }, columns: [column.name], option });
    return column;
  }
  const pk = table.primaryKey;
  if (!pk || pk.length !== 1) {
    throw new PurgerError("TARGET", `${where}: ${table.display} has ${pk ? "a primary key of several columns" : "no primary key"}`, {
      hint: "name a unique, NOT NULL column with `key`",
    });
  }
  return pk[0]!;
}

export interface LeadingIndexOptions {
  /** Only a unique, non-partial index (one that proves the column's values are unique). */
  unique?: boolean;
  /** Skip partial indexes (their predicate may not cover the plugin's query). */
  whole?: boolean;
  /** Only an index of exactly these columns. */
  exact?: boolean;
  /** Only an index of this access method (`btree`). */
  method?: string;
}

/**
 * A valid index whose first key columns are `columns`, in order (the primary
 * key first, then by name), or null: what tells a plugin whether its scan by
 * these columns is served, for `purger doctor`'s diagnostics.
 */
export function leadingIndex(
  table: TableInfo,
  columns: ColumnInfo | readonly ColumnInfo[],
  options: LeadingIndexOptions = {},
): IndexInfo | null {
  const nums = (Array.isArray(columns) ? columns : [columns as ColumnInfo]).map((c) => c.num);
  return (
    table.indexes.find(
      (i) =>
        i.valid &&
        nums.every((n, k) => i.columns[k] === n) &&
        (!options.unique || (i.unique && !i.partial)) &&
        (!options.whole || !i.partial) &&
        (!options.exact || i.columns.length === nums.length) &&
        (options.method === undefined || i.method === options.method),
    ) ?? null
  );
}

/** A foreign key pointing at a table. */
export interface ForeignKeyInfo {
  name: string;
  /** The referencing table. */
  table: { oid: number; display: string; sql: string };
  /** Its columns. */
  columns: string[];
  /** `confdeltype`: a no action, r restrict, c cascade, n set null, d set default. */
  onDelete: string;
}

/** Foreign keys of other tables (or the same) that reference the table `oid`. */
export async function loadReferencingKeys(db: Queryable, oid: number): Promise<ForeignKeyInfo[]> {
  const result = await db.query<{ name: string; oid: number; schema: string; rel: string; columns: string[]; on_delete: string }>(
    `SELECT k.conname AS name, c.oid, n.nspname AS schema, c.relname AS rel, k.confdeltype AS on_delete,
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(num, i)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num
                   ORDER BY u.i) AS columns
       FROM pg_catalog.pg_constraint k
       JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND k.confrelid = $1
      ORDER BY k.conname`,
    [oid],
  );
  return result.rows.map((r) => ({
    name: r.name,
    table: {
      oid: Number(r.oid),
      display: `${displayIdent(r.schema)}.${displayIdent(r.rel)}`,
      sql: `${quoteIdent(r.schema)}.${quoteIdent(r.rel)}`,
    },
    columns: r.columns,
    onDelete: r.on_delete,
  }));
}

async function loadColumns(db: Queryable, oids: number[]): Promise<Map<number, Map<string, ColumnInfo>>> {
  const result = await db.query<{
    rel: number;
    name: string;
    num: number;
    not_null: boolean;
    type_name: string;
    type_schema: string;
    type_display: string;
    category: string;
    base: string;
    labels: string[] | null;
  }>(
    `SELECT a.attrelid AS rel, a.attname AS name, a.attnum AS num, a.attnotnull AS not_null,
            t.typname AS type_name, tn.nspname AS type_schema, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_display,
            t.typcategory AS category, COALESCE(bt.typname, t.typname) AS base,
            CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                                                  WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END AS labels
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
       LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
      WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  const tables = new Map<number, Map<string, ColumnInfo>>();
  for (const r of result.rows) {
    const rel = Number(r.rel);
    let cols = tables.get(rel);
    if (!cols) tables.set(rel, (cols = new Map()));
    cols.set(r.name, {
      name: r.name,
      num: r.num,
      notNull: r.not_null,
      sql: quoteIdent(r.name),
      type: {
        name: r.type_name,
        schema: r.type_schema,
        sql: `${quoteIdent(r.type_schema)}.${quoteIdent(r.type_name)}`,
        display: r.type_display,
        category: r.category,
        base: r.base,
        labels: r.labels,
      },
    });
  }
  return tables;
}

async function loadIndexes(db: Queryable, oids: number[]): Promise<Map<number, IndexInfo[]>> {
  const result = await db.query<{
    rel: number;
    name: string;
    primary: boolean;
    unique: boolean;
    valid: boolean;
    keys: string;
    nkeys: number;
    partial: boolean;
    method: string;
  }>(
    `SELECT i.indrelid AS rel, c.relname AS name, i.indisprimary AS primary, i.indisunique AS unique,
            i.indisvalid AS valid, i.indkey::text AS keys, i.indnkeyatts AS nkeys,
            i.indpred IS NOT NULL AS partial, am.amname AS method
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
       JOIN pg_catalog.pg_am am ON am.oid = c.relam
      WHERE i.indrelid = ANY ($1::oid[])
      ORDER BY i.indisprimary DESC, c.relname`,
    [oids],
  );
  const tables = new Map<number, IndexInfo[]>();
  for (const r of result.rows) {
    const rel = Number(r.rel);
    let list = tables.get(rel);
    if (!list) tables.set(rel, (list = []));
    list.push({
      name: r.name,
      columns: r.keys.split(" ").slice(0, r.nkeys).map(Number),
      primary: r.primary,
      unique: r.unique,
      valid: r.valid,
      partial: r.partial,
      method: r.method,
    });
  }
  return tables;
}
