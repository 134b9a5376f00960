/**
 * A foreign key violation during a batch, turned into an error that names the
 * constraint, the referencing table and the fix that fits the entry: list a
 * table it does not know under `cascade` or `unlessReferencedBy`, or, for a
 * table already in `unlessReferencedBy`, why its rows still block the delete.
 */
import { PurgerError, displayIdent } from "@purger/core";
import type pg from "pg";
import type { Plan } from "./resolve.js";

interface PgForeignKeyError {
  code?: string;
  constraint?: string;
  table?: string;
  schema?: string;
}

/** Whether `error` is PostgreSQL's foreign_key_violation. */
export function isForeignKeyViolation(error: unknown): boolean {
  return (error as PgForeignKeyError | null)?.code === "23503";
}

/**
 * The error to throw for a foreign key violation met deleting rows of `deleting`
 * (the entry's table or a cascade table). The core rolls the whole batch back,
 * so nothing is half deleted.
 */
export async function foreignKeyError(pool: pg.Pool, plan: Plan, deleting: string, error: unknown): Promise<PurgerError> {
  const e = error as PgForeignKeyError;
  const referencing = e.schema && e.table ? `${displayIdent(e.schema)}.${displayIdent(e.table)}` : "another table";
  const key = await constraintColumns(pool, e).catch(() => null);
  const columns = key?.columns ?? null;
  const column = columns?.length === 1 ? columns[0]! : "<its column>";
  const what =
    `cannot delete rows of ${deleting}: rows of ${referencing} still reference them through foreign key "${e.constraint ?? "?"}"` +
    `${columns ? ` (${columns.join(", ")})` : ""}; the batch was rolled back, nothing was deleted. `;

  const listed =
    deleting === plan.table.display
      ? plan.referencedBy.flatMap((ref, i) => (ref.table.schema === e.schema && ref.table.name === e.table ? [{ ref, i }] : []))
      : [];
  if (listed.length === 0) {
    return new PurgerError(
      "RUN",
      what +
        `Add { table: ${referencing}, column: ${column} } to \`cascade\` (delete them too, listed before the table they reference) ` +
        `or to \`unlessReferencedBy\` (keep rows still referenced)`,
      { cause: error, hint: `list ${referencing} under cascade or unlessReferencedBy of this entry` },
    );
  }
  // The table is already in unlessReferencedBy: moving it to cascade would delete the rows it is there to protect.
  const same = listed.find(({ ref }) => columns?.length === 1 && ref.column.name === columns[0]);
  let why: string;
  let hint: string;
  if (!same) {
    const by = listed.map(({ ref, i }) => `unlessReferencedBy[${i}] by ${ref.column.name}`).join(", ");
    why = `${referencing} is in ${by}, but this foreign key is on (${columns?.join(", ") ?? "other columns"}): add { table: ${referencing}, column: ${column} } to \`unlessReferencedBy\` too`;
    hint = `keep rows referenced through ${column} as well`;
  } else if (same.ref.where.length > 0) {
    why =
      `${referencing} is in unlessReferencedBy[${same.i}], but only its rows matching unlessReferencedBy[${same.i}].where keep a row; ` +
      `its other rows still block the delete: remove that \`where\`, or let the foreign key clear them (ON DELETE SET NULL or CASCADE)`;
    hint = `rows of ${referencing} outside unlessReferencedBy[${same.i}].where reference rows the entry deletes`;
  } else if (key?.referenced.length === 1 && key.referenced[0] !== same.ref.references.name) {
    why =
      `${referencing} is in unlessReferencedBy[${same.i}], which compares ${column} with ${deleting}.${displayIdent(same.ref.references.name)}, ` +
      `but the foreign key references ${deleting}.${displayIdent(key.referenced[0]!)}: set unlessReferencedBy[${same.i}].references to ${key.referenced[0]}`;
    hint = `unlessReferencedBy[${same.i}].references must be the column the foreign key references`;
  } else {
    why = `${referencing} is in unlessReferencedBy[${same.i}], yet one of its rows references a row of the batch`;
    hint = `run the entry again: the batch checks unlessReferencedBy once its rows are locked`;
  }
  return new PurgerError("RUN", what + why, { cause: error, hint });
}

async function constraintColumns(pool: pg.Pool, e: PgForeignKeyError): Promise<{ columns: string[]; referenced: string[] } | null> {
  if (!e.constraint || !e.table || !e.schema) return null;
  const result = await pool.query<{ columns: string[]; referenced: string[] }>(
    `SELECT ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(num, i)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i) AS columns,
            ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS u(num, i)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num ORDER BY u.i) AS referenced
       FROM pg_catalog.pg_constraint k
       JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE k.conname = $1 AND c.relname = $2 AND n.nspname = $3`,
    [e.constraint, e.table, e.schema],
  );
  return result.rows[0] ?? null;
}
