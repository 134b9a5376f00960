/**
 * The statements of a retention entry, written out once per run from the
 * resolved plan. Identifiers become SQL text only through `quoteIdent`, after
 * the catalog confirmed them; every value is a `$n` parameter cast to the
 * catalog type of the column it is compared with.
 */
import { createHash } from "node:crypto";
import type { Condition, Plan } from "./resolve.js";
import { quoteIdent, type ColumnInfo } from "@purger/core";

export { quoteIdent };

/** Values known at run time, by name: the cutoff, the batch size, the cursor, the batch's keys. */
export type Dynamic = Record<string, unknown>;

type Slot = { value: unknown } | { dynamic: string };

/** A statement with its parameters; `name` makes node-postgres prepare it once per connection. */
export interface Statement {
  name: string;
  text: string;
  slots: Slot[];
}

/** Collects a statement's parameters: static values from the options, dynamic ones bound per execution. */
class Params {
  readonly slots: Slot[] = [];
  private readonly named = new Map<string, number>();

  /** A value from the options, cast to `type` (a quoted catalog type name). */
  value(value: unknown, type: string): string {
    this.slots.push({ value });
    return `$${this.slots.length}::${type}`;
  }

  /** A value given at execution (`cutoff`, `limit` …); one parameter per name. */
  dynamic(key: string, type: string): string {
    let n = this.named.get(key);
    if (n === undefined) {
      this.slots.push({ dynamic: key });
      n = this.slots.length;
      this.named.set(key, n);
    }
    return `$${n}::${type}`;
  }
}

function statement(text: string, params: Params): Statement {
  const hash = createHash("sha1").update(text).digest("hex").slice(0, 20);
  return { name: `purger_retention_${hash}`, text, slots: params.slots };
}

/** The `{ name, text, values }` node-postgres takes, with the dynamic values filled in. */
export function bind(stmt: Statement, dynamic: Dynamic): { name: string; text: string; values: unknown[] } {
  const values = stmt.slots.map((slot) => {
    if ("value" in slot) return slot.value;
    if (!(slot.dynamic in dynamic)) throw new Error(`statement parameter "${slot.dynamic}" not bound`);
    return dynamic[slot.dynamic];
  });
  return { name: stmt.name, text: stmt.text, values };
}

/** Keys a dry run's batch reports. */
export const SAMPLE_SIZE = 10;

const TIMESTAMPTZ = `"pg_catalog"."timestamptz"`;
const INT8 = `"pg_catalog"."int8"`;
const TEXT = `"pg_catalog"."text"`;

/** Alias of the entry's table in every statement. */
const T = "t";

function col(alias: string, column: ColumnInfo): string {
  return `${alias}.${column.sql}`;
}

/** `where` conditions on `alias`: scalar `=`, null `IS NULL`, list `= ANY($n::type[])` (plus `IS NULL` for a null in it). */
function conditions(alias: string, list: Condition[], p: Params): string[] {
  return list.map(({ column, value }) => {
    const c = col(alias, column);
    if (value === null) return `${c} IS NULL`;
    if (!Array.isArray(value)) return `${c} = ${p.value(value, column.type.sql)}`;
    const values = value.filter((v) => v !== null);
    const withNull = values.length < value.length;
    if (values.length === 0) return `${c} IS NULL`;
    const any = `${c} = ANY (${p.value(values, `${column.type.sql}[]`)})`;
    return withNull ? `(${any} OR ${c} IS NULL)` : any;
  });
}

/** Types whose values are wall-clock times: they become instants only in a zone. */
const WALL_CLOCK_TYPES = new Set(["timestamp", "date"]);

/** Whether `column` holds wall-clock times, written in the plan's `timeZone`. */
export function isWallClock(column: ColumnInfo): boolean {
  return WALL_CLOCK_TYPES.has(column.type.base);
}

/**
 * An instant parameter (`cutoff`, `startedAt`) as a value comparable with or
 * assignable to `column`. A wall-clock column gets the instant's wall-clock
 * time in the plan's zone — a constant, so `column < …` still uses the
 * column's index, and the session's TimeZone plays no part.
 */
function instantFor(plan: Plan, column: ColumnInfo, key: string, p: Params): string {
  const instant = p.dynamic(key, TIMESTAMPTZ);
  return isWallClock(column) ? `(${instant} AT TIME ZONE ${p.value(plan.timeZone, TEXT)})` : instant;
}

/** `column < cutoff`, the cutoff in the column's own type so that the column's index serves the comparison. */
function beforeCutoff(plan: Plan, p: Params): string {
  const c = col(T, plan.clock);
  if (plan.format === "timestamp") return `${c} < ${instantFor(plan, plan.clock, "cutoff", p)}`;
  return `${c} < ${p.dynamic("cutoff", plan.clock.type.sql)}`;
}

/** Everything a row must satisfy to qualify, on alias `t` (no cursor). */
function qualify(plan: Plan, p: Params): string {
  const parts = [beforeCutoff(plan, p)];
  parts.push(...conditions(T, plan.where, p));
  if (plan.action === "update") {
    // Only rows not already in the target state: a second run is a no-op.
    const differs = plan.set.map((s) => {
      if ("now" in s) return `${col(T, s.column)} IS NULL`;
      if (s.value === null) return `${col(T, s.column)} IS NOT NULL`;
      return `${col(T, s.column)} IS DISTINCT FROM ${p.value(s.value, s.column.type.sql)}`;
    });
    parts.push(differs.length === 1 ? differs[0]! : `(${differs.join(" OR ")})`);
  }
  parts.push(...referenceConditions(plan, p));
  if (plan.keepLatest) {
    // The count-th newest row (by column, then key) among the rows matching `where`, per group;
    // only rows strictly older than it qualify. No such row (fewer than count) → NULL → nothing qualifies.
    const l = "l";
    const where = [`${col(l, plan.clock)} IS NOT NULL`, ...conditions(l, plan.where, p)];
    for (const per of plan.keepLatest.per) {
      where.push(per.notNull ? `${col(l, per)} = ${col(T, per)}` : `${col(l, per)} IS NOT DISTINCT FROM ${col(T, per)}`);
    }
    const newest = plan.order.map((c) => `${col(l, c)} DESC`).join(", ");
    const offset = p.value(plan.keepLatest.count - 1, INT8);
    parts.push(
      `${row(plan.order.map((c) => col(T, c)))} < (SELECT ${plan.order.map((c) => col(l, c)).join(", ")} FROM ${plan.table.sql} AS ${l} ` +
        `WHERE ${where.join(" AND ")} ORDER BY ${newest} OFFSET ${offset} LIMIT 1)`,
    );
  }
  return parts.join("\n    AND ");
}

/** Whether a row's qualifying depends on other rows (`unlessReferencedBy`, `unlessReferences`). */
export function hasReferences(plan: Plan): boolean {
  return plan.referencedBy.length > 0 || plan.references.length > 0;
}

/** The `NOT EXISTS` conditions of `unlessReferencedBy` and `unlessReferences`, on alias `t`. */
function referenceConditions(plan: Plan, p: Params): string[] {
  const parts: string[] = [];
  plan.referencedBy.forEach((ref, i) => {
    const r = `r${i}`;
    const where = [`${col(r, ref.column)} = ${col(T, ref.references)}`, ...conditions(r, ref.where, p)];
    parts.push(`NOT EXISTS (SELECT 1 FROM ${ref.table.sql} AS ${r} WHERE ${where.join(" AND ")})`);
  });
  plan.references.forEach((ref, i) => {
    const r = `p${i}`;
    const where = [`${col(r, ref.key)} = ${col(T, ref.column)}`, ...conditions(r, ref.where, p)];
    parts.push(`NOT EXISTS (SELECT 1 FROM ${ref.table.sql} AS ${r} WHERE ${where.join(" AND ")})`);
  });
  return parts;
}

function row(items: string[]): string {
  return items.length === 1 ? items[0]! : `(${items.join(", ")})`;
}

/** The keyset condition: strictly after the cursor `(column, key)`, so ties across batches are neither lost nor repeated. */
function afterCursor(plan: Plan, p: Params): string {
  const left = row(plan.order.map((c) => col(T, c)));
  const right = row(plan.order.map((c, i) => p.dynamic(`cursor${i}`, c.type.sql)));
  return `${left} > ${right}`;
}

/** The locked batch: `SELECT order columns … ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED`. */
function selectBatch(plan: Plan, p: Params, withCursor: boolean, extra: ColumnInfo[] = [], asText = false): string {
  const out = (c: ColumnInfo) => (asText ? `${col(T, c)}::text` : col(T, c));
  const columns = [...plan.order.map((c, i) => `${out(c)} AS o${i}`), ...extra.map((c, i) => `${out(c)} AS x${i}`)];
  const where = qualify(plan, p) + (withCursor ? `\n    AND ${afterCursor(plan, p)}` : "");
  return (
    `SELECT ${columns.join(", ")}\n  FROM ${plan.table.sql} AS ${T}\n  WHERE ${where}\n` +
    `  ORDER BY ${plan.order.map((c) => col(T, c)).join(", ")}\n  LIMIT ${p.dynamic("limit", INT8)}\n  FOR UPDATE OF ${T} SKIP LOCKED`
  );
}

/** Index in `plan.order` of each key column (the batch CTE exposes order columns as o0, o1 …). */
function keyOutputs(plan: Plan): string[] {
  return plan.keys.map((k) => `o${plan.order.indexOf(k)}`);
}

/**
 * One statement per batch (delete without cascade, or update): lock the batch,
 * change it, and return how many rows changed (every locked row: they are joined
 * back by their unique key, and the lock keeps them from changing), the cursor
 * (the batch's last `(column, key)`, as text: timestamps keep their microseconds)
 * and a few keys.
 */
export function buildBatch(plan: Plan, withCursor: boolean, withSample: boolean): Statement {
  const p = new Params();
  const batch = selectBatch(plan, p, withCursor);
  // The locked rows by key. One key column: `key = ANY (ARRAY(SELECT … FROM batch))`, always a primary-key
  // index scan; a join (`USING batch`) lets the planner hash the whole table for a large batch.
  const [single] = plan.keys.length === 1 ? plan.keys : [];
  const byKey = single
    ? { from: "", where: `${col(T, single)} = ANY (ARRAY(SELECT b.${keyOutputs(plan)[0]} FROM batch AS b))` }
    : { from: "batch AS b", where: plan.keys.map((k, i) => `${col(T, k)} = b.${keyOutputs(plan)[i]}`).join(" AND ") };
  const change =
    plan.action === "delete"
      ? `DELETE FROM ${plan.table.sql} AS ${T}${byKey.from ? ` USING ${byKey.from}` : ""} WHERE ${byKey.where} RETURNING 1`
      : `UPDATE ${plan.table.sql} AS ${T} SET ${assignments(plan, p)}${byKey.from ? ` FROM ${byKey.from}` : ""} WHERE ${byKey.where} RETURNING 1`;
  const last = plan.order.map((_, i) => `b.o${i}::text`).join(", ");
  const asc = plan.order.map((_, i) => `b.o${i}`).join(", ");
  const desc = plan.order.map((_, i) => `b.o${i} DESC`).join(", ");
  // Dry runs show the first keys of each batch; real runs skip that work.
  const sample = withSample
    ? `(SELECT array_agg(s.k) FROM (SELECT ${keyText(plan, "b")} AS k FROM batch AS b ORDER BY ${asc} LIMIT ${SAMPLE_SIZE}) AS s)`
    : "NULL::text[]";
  const text =
    `WITH batch AS (\n${batch}\n), changed AS (\n  ${change}\n)\n` +
    `SELECT (SELECT count(*) FROM changed)::int4 AS processed,\n` +
    `       (SELECT ARRAY[${last}] FROM batch AS b ORDER BY ${desc} LIMIT 1) AS cursor,\n` +
    `       ${sample} AS sample`;
  return statement(text, p);
}

/** The `SET` list of `action: update`. */
function assignments(plan: Plan, p: Params): string {
  return plan.set
    .map((s) => {
      const value =
        "now" in s
          ? `${instantFor(plan, s.column, "startedAt", p)}::${s.column.type.sql}`
          : s.value === null
            ? "NULL"
            : p.value(s.value, s.column.type.sql);
      return `${s.column.sql} = ${value}`;
    })
    .join(", ");
}

/** The rows of alias `t` whose key is one of the batch's (the `values:<key>` arrays). */
function byKeys(plan: Plan, p: Params): string {
  if (plan.keys.length === 1) {
    const k = plan.keys[0]!;
    return `${col(T, k)} = ANY (${p.dynamic(valuesOf(k), `${k.type.sql}[]`)})`;
  }
  const arrays = plan.keys.map((k) => p.dynamic(valuesOf(k), `${k.type.sql}[]`));
  return `(${plan.keys.map((k) => col(T, k)).join(", ")}) IN (SELECT * FROM unnest(${arrays.join(", ")}))`;
}

/**
 * Without cascade, with reference conditions: change the locked rows that still
 * qualify by their references. A second statement has a fresh snapshot (READ
 * COMMITTED), so a referencing row committed after the lock statement began is
 * seen here; one inserted later through a foreign key waits for the batch's row
 * locks and then fails its own check (test/reference-race.test.ts).
 */
export function buildCheckedChange(plan: Plan, withSample: boolean): Statement {
  const p = new Params();
  const where = [byKeys(plan, p), ...referenceConditions(plan, p)].join("\n    AND ");
  const returning = plan.order.map((c, i) => `${col(T, c)} AS o${i}`).join(", ");
  const change =
    plan.action === "delete"
      ? `DELETE FROM ${plan.table.sql} AS ${T}\n  WHERE ${where}\n  RETURNING ${returning}`
      : `UPDATE ${plan.table.sql} AS ${T} SET ${assignments(plan, p)}\n  WHERE ${where}\n  RETURNING ${returning}`;
  const asc = plan.order.map((_, i) => `b.o${i}`).join(", ");
  const sample = withSample
    ? `(SELECT array_agg(s.k) FROM (SELECT ${keyText(plan, "b")} AS k FROM changed AS b ORDER BY ${asc} LIMIT ${SAMPLE_SIZE}) AS s)`
    : "NULL::text[]";
  const text = `WITH changed AS (\n  ${change}\n)\nSELECT (SELECT count(*) FROM changed)::int4 AS processed, ${sample} AS sample`;
  return statement(text, p);
}

/** With cascade and reference conditions: the locked rows that still qualify by their references (fresh snapshot), as the lock returned them. */
export function buildRecheck(plan: Plan): Statement {
  const p = new Params();
  const columns = [
    ...plan.order.map((c, i) => `${col(T, c)}::text AS o${i}`),
    ...cascadeColumns(plan).map((c, i) => `${col(T, c)}::text AS x${i}`),
  ];
  const where = [byKeys(plan, p), ...referenceConditions(plan, p)].join("\n    AND ");
  const text = `SELECT ${columns.join(", ")}\n  FROM ${plan.table.sql} AS ${T}\n  WHERE ${where}\n  ORDER BY ${plan.order.map((c) => col(T, c)).join(", ")}`;
  return statement(text, p);
}

function keyText(plan: Plan, alias: string): string {
  const outs = keyOutputs(plan).map((o) => `${alias}.${o}`);
  return outs.length === 1 ? `${outs[0]}::text` : `ROW(${outs.join(", ")})::text`;
}

/** Columns of the entry's table the cascade statements need beyond the order columns. */
export function cascadeColumns(plan: Plan): ColumnInfo[] {
  const needed = new Set<ColumnInfo>();
  for (const c of plan.cascade) if (c.parent === null && !plan.order.includes(c.references)) needed.add(c.references);
  return [...needed];
}

/** Lock the batch (with `cascade`, or with reference conditions) and return its order columns (and the columns cascade entries reference) as text. */
export function buildLock(plan: Plan, withCursor: boolean): Statement {
  const p = new Params();
  return statement(selectBatch(plan, p, withCursor, cascadeColumns(plan), true), p);
}

/** Name of the dynamic parameter holding the batch's values of a column of the entry's table. */
export function valuesOf(column: ColumnInfo): string {
  return `values:${column.name}`;
}

/** One DELETE per cascade entry, in the order listed: the rows of that table hanging off the locked batch. */
export function buildCascadeDeletes(plan: Plan): Statement[] {
  return plan.cascade.map((entry) => {
    const p = new Params();
    const attached = (index: number, alias: string, depth: number): string => {
      const e = plan.cascade[index]!;
      if (e.parent === null) return `${col(alias, e.column)} = ANY (${p.dynamic(valuesOf(e.references), `${e.references.type.sql}[]`)})`;
      const parent = plan.cascade[e.parent]!;
      const pa = `c${depth + 1}`;
      return `${col(alias, e.column)} IN (SELECT ${col(pa, e.references)} FROM ${parent.table.sql} AS ${pa} WHERE ${attached(e.parent, pa, depth + 1)})`;
    };
    const text = `DELETE FROM ${entry.table.sql} AS c0 WHERE ${attached(plan.cascade.indexOf(entry), "c0", 0)}`;
    return statement(text, p);
  });
}

/** With `cascade`: delete the locked batch of the entry's table by key, after its children. */
export function buildDeleteByKeys(plan: Plan): Statement {
  const p = new Params();
  return statement(`DELETE FROM ${plan.table.sql} AS ${T} WHERE ${byKeys(plan, p)}`, p);
}

/** Exact count of qualifying rows, capped at `$limit` (NULL: no cap) — for guards and estimates. */
export function buildCount(plan: Plan): Statement {
  const p = new Params();
  const text = `SELECT count(*)::int8 AS n FROM (SELECT 1 FROM ${plan.table.sql} AS ${T}\n  WHERE ${qualify(plan, p)}\n  LIMIT ${p.dynamic("limit", INT8)}) AS s`;
  return statement(text, p);
}

/**
 * What a run would delete, for the guards: the qualifying rows and every row
 * `cascade` deletes with them (grandchildren too), capped at `$limit` (NULL: no
 * cap). The qualifying rows are capped first: past the cap the guard stops the
 * run whatever their children.
 */
export function buildGuardCount(plan: Plan): Statement {
  if (plan.cascade.length === 0) return buildCount(plan);
  const p = new Params();
  const limit = p.dynamic("limit", INT8);
  const referenced = [...new Set(plan.cascade.filter((c) => c.parent === null).map((c) => c.references))];
  const columns = referenced.length > 0 ? referenced.map((c, i) => `${col(T, c)} AS r${i}`).join(", ") : "1";
  const attached = (index: number, alias: string, depth: number): string => {
    const e = plan.cascade[index]!;
    if (e.parent === null) return `${col(alias, e.column)} IN (SELECT q.r${referenced.indexOf(e.references)} FROM q)`;
    const parent = plan.cascade[e.parent]!;
    const pa = `c${depth + 1}`;
    return `${col(alias, e.column)} IN (SELECT ${col(pa, e.references)} FROM ${parent.table.sql} AS ${pa} WHERE ${attached(e.parent, pa, depth + 1)})`;
  };
  const children = plan.cascade.map(
    (entry, i) => `(SELECT count(*) FROM (SELECT 1 FROM ${entry.table.sql} AS c0 WHERE ${attached(i, "c0", 0)} LIMIT ${limit}) AS s)`,
  );
  const total = ["(SELECT count(*) FROM q)", ...children].join("\n     + ");
  const text =
    `WITH q AS (SELECT ${columns} FROM ${plan.table.sql} AS ${T}\n  WHERE ${qualify(plan, p)}\n  LIMIT ${limit})\n` +
    // LEAST ignores a NULL (no cap).
    `SELECT LEAST(${total}, ${limit})::int8 AS n`;
  return statement(text, p);
}

/** How many of the oldest, and of the newest, clock values `buildClockSample` reads. */
export const CLOCK_SAMPLE_SIZE = 20;

/** The oldest and the newest non-NULL clock values (as text) among the rows matching `where`: what the format check reads. */
export function buildClockSample(plan: Plan): Statement {
  const p = new Params();
  const side = (direction: string) => {
    const where = [`${col(T, plan.clock)} IS NOT NULL`, ...conditions(T, plan.where, p)].join(" AND ");
    return `(SELECT ${col(T, plan.clock)} AS c FROM ${plan.table.sql} AS ${T} WHERE ${where} ORDER BY ${col(T, plan.clock)} ${direction} LIMIT ${CLOCK_SAMPLE_SIZE})`;
  };
  // A small table yields the same values from both ends: each once, oldest first.
  return statement(`SELECT DISTINCT s.c, s.c::text AS v FROM (${side("ASC")}\n  UNION ALL\n  ${side("DESC")}) AS s ORDER BY s.c`, p);
}

/** The planner's row estimate of the qualifying rows (EXPLAIN, nothing runs). */
export function buildExplainCount(plan: Plan): Statement {
  const p = new Params();
  return statement(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${plan.table.sql} AS ${T}\n  WHERE ${qualify(plan, p)}`, p);
}

/**
 * Exact count of every row the entry could delete (guard `maxFraction`): the
 * table's, and with `cascade` each cascade table's — the same kind of rows the
 * guard count includes, so the fraction compares like with like.
 */
export function buildCountAll(plan: Plan): Statement {
  const tables = [...new Map([plan.table, ...plan.cascade.map((c) => c.table)].map((t) => [t.oid, t])).values()];
  const counts = tables.map((t) => `(SELECT count(*) FROM ${t.sql})`);
  return statement(`SELECT (${counts.join(" + ")})::int8 AS n`, new Params());
}
