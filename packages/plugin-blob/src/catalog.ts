/**
 * What the live database says about the uploads table an entry names. Names
 * are bound as parameters in every lookup; they become SQL text only later,
 * quoted with `quoteIdent`, once the catalog has confirmed them.
 */
import { assertUniqueKey, parseQualifiedName, PurgerError, quoteIdent } from "@purger/core";
import type pg from "pg";
import type { UploadsOptions } from "./options.js";

export type Queryable = pg.Pool | pg.ClientBase;

export interface Column {
  name: string;
  /** The quoted name. */
  sql: string;
  /** The quoted, schema-qualified type for casts of bound values: `"pg_catalog"."int8"`. */
  typeSql: string;
  /** `typname` (of the base type for a domain). */
  type: string;
  num: number;
}

/** The uploads table, confirmed against the catalog. */
export interface UploadsTable {
  /** The quoted, schema-qualified name. */
  sql: string;
  /** `schema.name` for messages and the run's per-table counts. */
  display: string;
  key: Column;
  column: Column;
  flag: Column;
  objectKey: Column;
  /** A valid index whose first column is `column` (the sweep's scan), by name; null when there is none. */
  clockIndex: string | null;
  /** A valid, non-partial index whose first column is `objectKey` (the "does another row use this key" checks), by name; null when none. */
  objectKeyIndex: string | null;
}

const CLOCK_TYPES = new Set(["timestamptz", "timestamp", "date"]);
const TEXT_TYPES = new Set(["text", "varchar", "bpchar", "name", "citext"]);

/** Split `name` or `schema.name` (core's rules). */
export const parseTableName = parseQualifiedName;

/** Look the table up (in the search_path without a schema) and check every column the options name. Throws TARGET. */
export async function resolveUploadsTable(db: Queryable, uploads: UploadsOptions, entryId: string): Promise<UploadsTable> {
  const where = `plugins[${entryId}].options.uploads`;
  const ref = parseTableName(uploads.table);
  if (!ref) {
    throw new PurgerError("CONFIG", `${where}.table: "${uploads.table}" is not a table name`, {
      hint: 'write `name` or `schema.name`; double-quote a part that holds a dot: `"my.schema".uploads`',
    });
  }
  const found = await db.query<{ oid: number; schema: string; name: string }>(
    `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = $2 AND c.relkind IN ('r', 'p')
        AND CASE WHEN $1::text IS NULL THEN n.nspname = ANY (pg_catalog.current_schemas(false)) ELSE n.nspname = $1 END
      ORDER BY pg_catalog.array_position(pg_catalog.current_schemas(false), n.nspname)
      LIMIT 1`,
    [ref.schema, ref.name],
  );
  const table = found.rows[0];
  if (!table) {
    throw new PurgerError("TARGET", `${where}.table: table "${uploads.table}" does not exist`, {
      hint: ref.schema === null ? "without a schema it is searched in the search_path; write `schema.name` otherwise" : undefined,
    });
  }
  const display = `${table.schema}.${table.name}`;
  const { rows: columns } = await db.query<{
    name: string;
    num: number;
    type: string;
    type_schema: string;
    base: string;
    not_null: boolean;
  }>(
    `SELECT a.attname AS name, a.attnum AS num, t.typname AS type, tn.nspname AS type_schema,
            COALESCE(bt.typname, t.typname) AS base, a.attnotnull AS not_null
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
       LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`,
    [table.oid],
  );
  const byName = new Map(columns.map((c) => [c.name, c]));
  const column = (option: keyof UploadsOptions, name: string, types: Set<string> | null, expected: string): Column => {
    const found = byName.get(name);
    if (!found) {
      const similar = columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
      throw new PurgerError("TARGET", `${where}.${option}: column "${name}" does not exist in ${display}`, {
        hint: similar ? `did you mean "${similar.name}"?` : `columns: ${columns.map((c) => c.name).join(", ")}`,
      });
    }
    if (types && !types.has(found.base)) {
      throw new PurgerError("TARGET", `${where}.${option}: column "${name}" of ${display} is ${found.type}, expected ${expected}`);
    }
    return {
      name,
      sql: quoteIdent(name),
      typeSql: `${quoteIdent(found.type_schema)}.${quoteIdent(found.type)}`,
      type: found.base,
      num: found.num,
    };
  };

  const { rows: indexes } = await db.query<{
    name: string;
    primary: boolean;
    keys: string;
    nkeys: number;
    valid: boolean;
    partial: boolean;
  }>(
    `SELECT c.relname AS name, i.indisprimary AS primary, i.indkey::text AS keys, i.indnkeyatts AS nkeys, i.indisvalid AS valid,
            i.indpred IS NOT NULL AS partial
       FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = $1 ORDER BY i.indisprimary DESC, c.relname`,
    [table.oid],
  );
  const keyColumns = (keys: string, nkeys: number) => keys.split(" ").slice(0, nkeys).map(Number);

  let keyName = uploads.key;
  if (keyName === undefined) {
    const primary = indexes.find((i) => i.primary);
    const numbers = primary ? keyColumns(primary.keys, primary.nkeys) : [];
    if (numbers.length !== 1) {
      throw new PurgerError("CONFIG", `${where}.key: ${display} has ${primary ? "a primary key of several columns" : "no primary key"}`, {
        hint: "name a unique, NOT NULL column with `key`",
      });
    }
    keyName = columns.find((c) => c.num === numbers[0])!.name;
  }
  // The sweep locks and deletes rows by this key: a nullable or duplicate value would reach rows that do not qualify.
  await assertUniqueKey(db, { table: { schema: table.schema, name: table.name }, columns: [keyName], option: "uploads.key" });
  const clock = column("column", uploads.column, CLOCK_TYPES, "timestamptz, timestamp or date");
  if (clock.type !== "timestamptz") await assertTimeZone(db, uploads.timeZone ?? "UTC", `${where}.timeZone`);
  const clockIndex = indexes.find((i) => i.valid && keyColumns(i.keys, i.nkeys)[0] === clock.num)?.name ?? null;
  const objectKey = column("objectKey", uploads.objectKey, TEXT_TYPES, "text or varchar");
  const objectKeyIndex = indexes.find((i) => i.valid && !i.partial && keyColumns(i.keys, i.nkeys)[0] === objectKey.num)?.name ?? null;
  return {
    sql: `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`,
    display,
    key: column("key", keyName, null, ""),
    column: clock,
    flag: column("flag", uploads.flag, new Set(["bool"]), "boolean"),
    objectKey,
    clockIndex,
    objectKeyIndex,
  };
}

/** PostgreSQL converts the clock, so PostgreSQL decides which zone names exist. Throws CONFIG. */
async function assertTimeZone(db: Queryable, zone: string, where: string): Promise<void> {
  try {
    await db.query("SELECT now() AT TIME ZONE $1::text", [zone]);
  } catch (error) {
    if ((error as { code?: string }).code !== "22023") throw error;
    throw new PurgerError("CONFIG", `${where}: "${zone}" is not a time zone PostgreSQL knows`, {
      hint: 'write an IANA name such as "UTC" or "Europe/Berlin" (see pg_timezone_names)',
      cause: error,
    });
  }
}
