/**
 * The uploads table an entry names, confirmed against the live database with
 * core's catalog toolkit. Names are bound as parameters in every lookup; they
 * become SQL text only later, quoted, once the catalog has confirmed them.
 */
import { keyColumn, leadingIndex, loadTable, PurgerError, requireColumn, type ColumnInfo, type Queryable } from "@purger/core";
import type { UploadsOptions } from "./options.js";

export type { Queryable };

/** The uploads table, confirmed against the catalog. */
export interface UploadsTable {
  /** The quoted, schema-qualified name. */
  sql: string;
  /** `schema.name` for messages and the run's per-table counts. */
  display: string;
  key: ColumnInfo;
  column: ColumnInfo;
  flag: ColumnInfo;
  objectKey: ColumnInfo;
  /** A valid index whose first column is `column` (the sweep's scan), by name; null when there is none. */
  clockIndex: string | null;
  /** A valid, non-partial index whose first column is `objectKey` (the "does another row use this key" checks), by name; null when none. */
  objectKeyIndex: string | null;
}

const CLOCK_TYPES = { accept: ["timestamptz", "timestamp", "date"], expected: "timestamptz, timestamp or date" };
const TEXT_TYPES = { accept: ["text", "varchar", "bpchar", "name", "citext"], expected: "text or varchar" };

/** Look the table up (in the search_path without a schema) and check every column the options name. Throws TARGET. */
export async function resolveUploadsTable(db: Queryable, uploads: UploadsOptions, entryId: string): Promise<UploadsTable> {
  const where = `plugins[${entryId}].options.uploads`;
  const table = await loadTable(db, uploads.table, { where: `${where}.table`, kinds: ["r", "p"] });
  // The sweep locks and deletes rows by this key: a nullable or duplicate value would reach rows that do not qualify.
  const key = await keyColumn(db, table, uploads.key, "uploads.key", `${where}.key`);
  const clock = requireColumn(table, uploads.column, `${where}.column`, CLOCK_TYPES);
  if (clock.type.base !== "timestamptz") await assertTimeZone(db, uploads.timeZone ?? "UTC", `${where}.timeZone`);
  const objectKey = requireColumn(table, uploads.objectKey, `${where}.objectKey`, TEXT_TYPES);
  return {
    sql: table.sql,
    display: table.display,
    key,
    column: clock,
    flag: requireColumn(table, uploads.flag, `${where}.flag`, { accept: ["bool"], expected: "boolean" }),
    objectKey,
    clockIndex: leadingIndex(table, clock)?.name ?? null,
    objectKeyIndex: leadingIndex(table, objectKey, { whole: true })?.name ?? null,
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
