/**
 * The one check every plugin makes of a `key` option before it selects,
 * locks or deletes rows by it: a key that is nullable or not unique could
 * make a statement touch rows that do not qualify (a duplicate key value
 * belongs to a row inside the window too), so purger refuses it up front.
 */
import type pg from "pg";
import { PurgerError } from "../errors.js";

export interface UniqueKeyCheck {
  /** The table, as the catalog names it (schema and name, unquoted). */
  table: { schema: string; name: string };
  /** The key's columns, in any order. */
  columns: string[];
  /** The option that named the key, for messages: `uploads.key`, `certificates.key`. */
  option: string;
}

interface KeyColumnRow {
  name: string;
  num: number;
  not_null: boolean;
}

interface IndexRow {
  name: string;
  keys: number[];
  unique: boolean;
  valid: boolean;
  partial: boolean;
  expression: boolean;
}

/**
 * Throws a `TARGET` error (exit 2) naming `options.<option>` unless every key
 * column exists and is NOT NULL, and one valid, non-partial unique index (or
 * the primary key) covers exactly these columns — no more, no fewer, no
 * expressions.
 */
export async function assertUniqueKey(db: pg.Pool | pg.ClientBase, check: UniqueKeyCheck): Promise<void> {
  const { table, columns, option } = check;
  const display = `${table.schema}.${table.name}`;
  const where = `options.${option}`;
  if (columns.length === 0) {
    throw new PurgerError("CONFIG", `${where}: a key needs at least one column`, { hint: "name a unique, NOT NULL column" });
  }
  const found = await db.query<KeyColumnRow>(
    `SELECT a.attname AS name, a.attnum AS num, a.attnotnull AS not_null
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY ($3::text[])`,
    [table.schema, table.name, columns],
  );
  const byName = new Map(found.rows.map((r) => [r.name, r]));
  for (const name of columns) {
    const column = byName.get(name);
    if (!column) {
      throw new PurgerError("TARGET", `${where}: column ${JSON.stringify(name)} does not exist in ${display}`, {
        hint: "name a unique, NOT NULL column of the table",
      });
    }
    if (!column.not_null) {
      throw new PurgerError("TARGET", `${where}: column ${JSON.stringify(name)} of ${display} is nullable, so it cannot identify a row`, {
        hint: `make it NOT NULL (ALTER TABLE ... ALTER COLUMN ... SET NOT NULL), or name the primary key`,
      });
    }
  }
  const wanted = new Set(columns.map((name) => byName.get(name)!.num));
  const { rows: indexes } = await db.query<IndexRow>(
    `SELECT ic.relname AS name, (i.indkey::int2[])[0:i.indnkeyatts - 1]::int[] AS keys, i.indisunique AS unique,
            i.indisvalid AS valid, i.indpred IS NOT NULL AS partial, i.indexprs IS NOT NULL AS expression
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique`,
    [table.schema, table.name],
  );
  const exact = (keys: number[]) => keys.length === wanted.size && keys.every((k) => wanted.has(k));
  if (indexes.some((i) => i.valid && !i.partial && !i.expression && exact(i.keys))) return;

  const near = indexes.find((i) => exact(i.keys));
  const why = near
    ? `its unique index ${near.name} is ${!near.valid ? "not valid (a failed CREATE INDEX CONCURRENTLY?)" : near.partial ? "partial (WHERE …)" : "on an expression"}`
    : "no unique index covers exactly these columns";
  const list = columns.join(", ");
  throw new PurgerError("TARGET", `${where}: (${list}) is not a unique key of ${display}: ${why}`, {
    hint: "a key that is not unique could touch rows that do not qualify; name the primary key or a column with a valid, non-partial unique index",
    details: { option, table: display, columns },
  });
}
