/**
 * What the live database says about the tables an entry names: their
 * schema-qualified names, columns, types (with the quoted names casts use),
 * primary keys and indexes. Every lookup binds the names as parameters; the
 * names only become SQL text later, quoted, once the catalog confirmed them.
 */
import type pg from "pg";
import { parseQualifiedName, quoteIdent } from "@purger/core";

export type Queryable = pg.Pool | pg.ClientBase;

/** A table as written in the options, split into its parts. */
export interface TableRef {
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
  /** `pg_type.typcategory`: D datetime, N numeric, S string, E enum, U user (uuid) … */
  category: string;
  /** `typname` of the base type for a domain, else `name`. */
  base: string;
  /** The labels of an enum type, in order; null for other types. */
  labels: string[] | null;
}

export interface ColumnInfo {
  name: string;
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
  valid: boolean;
  partial: boolean;
  method: string;
}

export interface TableInfo {
  oid: number;
  schema: string;
  name: string;
  /** `relkind`: r table, p partitioned table, v view … */
  kind: string;
  /** The quoted, schema-qualified name: `"public"."oauth2_access_tokens"`. */
  sql: string;
  /** For messages and per-table counts: `public.oauth2_access_tokens` (parts quoted only where needed). */
  display: string;
  columns: Map<string, ColumnInfo>;
  indexes: IndexInfo[];
  /** Primary key columns in index order, or null. */
  primaryKey: ColumnInfo[] | null;
}

/** Split `name` or `schema.name` (core's rules), keeping the text as written for messages. */
export function parseTableName(text: string): TableRef | null {
  const parsed = parseQualifiedName(text);
  return parsed ? { ...parsed, text } : null;
}

/** Display a name as PostgreSQL would need it typed: quoted only when it must be. */
export function displayIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name);
}

/**
 * Look the tables up (in the search_path when no schema is given), with their
 * columns and indexes, in three queries. A missing table is `null`.
 */
export async function loadTables(db: Queryable, refs: TableRef[]): Promise<Array<TableInfo | null>> {
  const found = await db.query<{ i: string; oid: number; schema: string; name: string; kind: string }>(
    `SELECT r.i, c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind
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
      primaryKey: pk ? pk.columns.map((n) => byNum.get(n)!).filter(Boolean) : null,
    });
  }
  const byIndex = new Map(found.rows.map((r) => [Number(r.i) - 1, byOid.get(Number(r.oid)) ?? null]));
  return refs.map((_, i) => byIndex.get(i) ?? null);
}

/** Tables whose name matches case-insensitively (for "did you mean"). */
export async function similarTables(db: Queryable, ref: TableRef): Promise<string[]> {
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

/** Foreign keys of other tables (or the same) that reference `oid`. */
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
    category: string;
    base: string;
    labels: string[] | null;
  }>(
    `SELECT a.attrelid AS rel, a.attname AS name, a.attnum AS num, a.attnotnull AS not_null,
            t.typname AS type_name, tn.nspname AS type_schema, t.typcategory AS category,
            COALESCE(bt.typname, t.typname) AS base,
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
