/**
 * The index doctor (`purger doctor`): an index leading with the clock column
 * keeps every batch a short index range scan; an index on each cascade and
 * unlessReferencedBy column keeps each `NOT EXISTS` / child delete a probe
 * instead of a scan of the child table. Also: privileges, and foreign keys
 * that would make a batch fail.
 */
import {
  type Diagnostic,
  displayIdent,
  leadingIndex,
  loadReferencingKeys,
  type ColumnInfo,
  type Queryable,
  type TableInfo,
} from "@purger/core";
import type { Plan } from "./resolve.js";
import { isWallClock, quoteIdent } from "./sql.js";

export async function checkEntry(db: Queryable, plan: Plan): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  const target = plan.table.display;

  out.push(
    indexDiagnostic(
      plan.table,
      [plan.clock],
      plan.order,
      `the clock column ${target}.${displayIdent(plan.clock.name)}`,
      "every batch scans the table to find old rows",
    ),
  );
  const zone = zoneDiagnostic(plan);
  if (zone) out.push(zone);
  for (const ref of plan.referencedBy) {
    out.push(
      indexDiagnostic(
        ref.table,
        [ref.column],
        [ref.column],
        `unlessReferencedBy ${ref.table.display}.${displayIdent(ref.column.name)}`,
        "every row checked scans that table",
      ),
    );
  }
  for (const ref of plan.references) {
    out.push(
      indexDiagnostic(
        ref.table,
        [ref.key],
        [ref.key],
        `unlessReferences ${ref.table.display}.${displayIdent(ref.key.name)}`,
        "every row checked scans that table",
      ),
    );
  }
  for (const c of plan.cascade) {
    out.push(
      indexDiagnostic(
        c.table,
        [c.column],
        [c.column],
        `cascade ${c.table.display}.${displayIdent(c.column.name)}`,
        "every batch scans that table to find the children",
      ),
    );
  }
  if (plan.keepLatest && plan.keepLatest.per.length > 0) {
    const cols = [...plan.keepLatest.per, ...plan.order];
    out.push(
      indexDiagnostic(
        plan.table,
        plan.keepLatest.per,
        cols,
        `keepLatest per (${plan.keepLatest.per.map((c) => c.name).join(", ")})`,
        "finding each group's newest rows scans the table",
      ),
    );
  }

  const privilege = plan.action === "delete" ? "DELETE" : "UPDATE";
  const tables = [plan.table, ...plan.cascade.map((c) => c.table)];
  const privileges = await db.query<{ oid: number; ok: boolean }>(
    `SELECT u.oid, pg_catalog.has_table_privilege(u.oid, 'SELECT') AND pg_catalog.has_table_privilege(u.oid, $2) AS ok
       FROM unnest($1::oid[]) AS u(oid)`,
    [tables.map((t) => t.oid), privilege],
  );
  for (const row of privileges.rows) {
    if (row.ok) continue;
    const t = tables.find((x) => x.oid === Number(row.oid))!;
    out.push({
      level: "error",
      message: `the database user may not SELECT and ${privilege} rows of ${t.display}`,
      hint: `GRANT SELECT, ${privilege} ON ${t.sql} TO <purger's user>;`,
    });
  }

  if (plan.action === "delete") {
    // Rows referenced through a foreign key that neither cascade nor unlessReferencedBy covers make a batch fail.
    // The entry's table goes after every cascade entry; cascade entry i after those listed before it.
    const targets = [{ table: plan.table, before: plan.cascade.length }, ...plan.cascade.map((c, i) => ({ table: c.table, before: i }))];
    for (const { table: t, before } of targets) {
      for (const fk of await loadReferencingKeys(db, t.oid)) {
        if (fk.onDelete === "c" || fk.onDelete === "n" || fk.onDelete === "d") continue;
        const listed = [...plan.cascade, ...plan.referencedBy].some(
          (c) => c.table.oid === fk.table.oid && fk.columns.length === 1 && fk.columns[0] === c.column.name,
        );
        // A table whose rows of the batch are deleted earlier (refresh tokens before the access tokens they point to).
        const deletedEarlier = plan.cascade.slice(0, before).some((c) => c.table.oid === fk.table.oid);
        const selfChain = fk.table.oid === t.oid;
        if (listed || deletedEarlier) continue;
        out.push({
          level: "warn",
          message: `${fk.table.display} references ${t.display} through foreign key "${fk.name}" (${fk.columns.join(", ")})${selfChain ? " (the table references itself)" : ""}: a batch deleting a referenced row fails and rolls back`,
          hint: `add { table: ${fk.table.display}, column: ${fk.columns.join(", ")} } to cascade (delete them too) or to unlessReferencedBy (keep referenced rows)`,
        });
      }
    }
  }
  return out;
}

/** Which zone turns the clock's wall-clock values into instants; a zone given for instants is a mistake worth saying. */
function zoneDiagnostic(plan: Plan): Diagnostic | null {
  if (plan.format !== "timestamp") return null;
  const clock = `the clock ${plan.table.display}.${displayIdent(plan.clock.name)}`;
  if (isWallClock(plan.clock)) {
    const what =
      plan.clock.type.base === "date"
        ? `is a date: each day starts at midnight in ${plan.timeZone}`
        : `is a timestamp without time zone: its values are read as wall-clock times in ${plan.timeZone}`;
    return { level: "ok", message: `${clock} ${what} (options.timeZone)` };
  }
  if (plan.timeZone === "UTC") return null;
  return {
    level: "warn",
    message: `options.timeZone (${plan.timeZone}) has no effect: ${clock} is a ${plan.clock.type.name}, which holds instants`,
    hint: "remove timeZone from this entry",
  };
}

function indexDiagnostic(table: TableInfo, leading: ColumnInfo[], suggested: ColumnInfo[], what: string, cost: string): Diagnostic {
  const index = leadingIndex(table, leading, { method: "btree" });
  if (index) {
    return {
      level: "ok",
      message: `${what}: served by index "${index.name}"${index.partial ? " (a partial index: its predicate must cover the entry's conditions)" : ""}`,
    };
  }
  const columns = suggested.map((c) => quoteIdent(c.name)).join(", ");
  return {
    level: "warn",
    message: `${what} has no index leading with ${leading.map((c) => c.name).join(", ")}: ${cost}`,
    hint: `CREATE INDEX CONCURRENTLY ON ${table.sql} (${columns});`,
  };
}
