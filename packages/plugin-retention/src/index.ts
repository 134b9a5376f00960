/**
 * `@purger/plugin-retention`: delete (or update) the rows of one table whose
 * clock column is older than the entry's retention, in keyset batches of
 * `(column, key)` locked with `FOR UPDATE SKIP LOCKED`, one transaction each.
 */
import { definePlugin, PurgerError, type BatchContext, type BatchResult, type Cursor, type RunContext } from "@purger/core";
import type pg from "pg";
import { displayIdent } from "./catalog.js";
import { checkEntry } from "./check.js";
import { cutoffValue } from "./cutoff.js";
import { optionsSchema, type RetentionOptions } from "./options.js";
import { resolvePlan, type Plan } from "./resolve.js";
import {
  bind,
  buildBatch,
  buildCascadeDeletes,
  buildCount,
  buildCountAll,
  buildDeleteByKeys,
  buildExplainCount,
  buildLock,
  cascadeColumns,
  SAMPLE_SIZE,
  valuesOf,
  type Dynamic,
  type Statement,
} from "./sql.js";

export type { RetentionOptions } from "./options.js";
export { optionsSchema } from "./options.js";

/** What `prepare` resolves once per run: the plan and every statement's text. */
export interface RetentionState {
  plan: Plan;
  /** The batch statement (no cascade): first batch, then after a cursor; the dry-run variants also sample keys. */
  batch: { first: Statement; next: Statement; dryFirst: Statement; dryNext: Statement };
  /** With cascade: lock, delete children in order, delete the locked rows. */
  cascade: { first: Statement; next: Statement; children: Statement[]; parents: Statement } | null;
  count: Statement;
  explainCount: Statement;
  countAll: Statement;
}

/** When the planner expects at most this many qualifying rows, `estimate` counts them exactly. */
const EXACT_ESTIMATE_LIMIT = 20_000;

export default definePlugin<RetentionOptions, RetentionState>({
  name: "@purger/plugin-retention",
  version: "0.1.0",
  options: optionsSchema,
  usesRetention: true,

  async prepare(ctx) {
    const plan = await resolvePlan(ctx.pool, ctx.options, ctx.entry.id);
    const state: RetentionState = {
      plan,
      batch: {
        first: buildBatch(plan, false, false),
        next: buildBatch(plan, true, false),
        dryFirst: buildBatch(plan, false, true),
        dryNext: buildBatch(plan, true, true),
      },
      cascade:
        plan.cascade.length === 0
          ? null
          : {
              first: buildLock(plan, false),
              next: buildLock(plan, true),
              children: buildCascadeDeletes(plan),
              parents: buildDeleteByKeys(plan),
            },
      count: buildCount(plan),
      explainCount: buildExplainCount(plan),
      countAll: buildCountAll(plan),
    };
    ctx.log.debug(
      { table: plan.table.display, sql: state.cascade ? state.cascade.next.text : state.batch.next.text },
      "retention statement prepared",
    );
    return state;
  },

  async batch(ctx) {
    return ctx.state.cascade ? cascadeBatch(ctx, ctx.state.cascade) : singleStatementBatch(ctx);
  },

  async estimate(ctx) {
    // The planner's estimate costs a plan, not a scan; a small backlog is then counted exactly
    // (cheap, and the progress bar ends at its true total). A large one keeps the estimate: an
    // exact count of millions of rows would cost a noticeable share of the run itself (QUALITY P1).
    const explained = await ctx.pool.query<{ "QUERY PLAN": Array<{ Plan: { "Plan Rows": number } }> }>(
      bind(ctx.state.explainCount, runValues(ctx)),
    );
    const planned = Math.round(explained.rows[0]?.["QUERY PLAN"][0]?.Plan["Plan Rows"] ?? 0);
    if (planned > EXACT_ESTIMATE_LIMIT) return planned;
    const exact = await countQualifying(ctx, EXACT_ESTIMATE_LIMIT + 1);
    return exact > EXACT_ESTIMATE_LIMIT ? Math.max(exact, planned) : exact;
  },

  async count(ctx, limit) {
    return countQualifying(ctx, limit);
  },

  async countAll(ctx) {
    const result = await ctx.pool.query<{ n: string }>(bind(ctx.state.countAll, {}));
    return Number(result.rows[0]?.n ?? 0);
  },

  async check(ctx) {
    return checkEntry(ctx.pool, ctx.state.plan);
  },

  describe(options) {
    const target = `${options.table}.${options.column}`;
    return options.action === "update" ? `${target} → update ${Object.keys(options.set ?? {}).join(", ")}` : target;
  },
});

/** Values fixed for the whole run. */
function runValues(ctx: RunContext<RetentionOptions, RetentionState>): Dynamic {
  const { plan } = ctx.state;
  return { cutoff: cutoffValue(plan.format, plan.clock, ctx.cutoff), startedAt: ctx.startedAt.toISOString() };
}

async function countQualifying(ctx: RunContext<RetentionOptions, RetentionState>, limit: number): Promise<number> {
  const values = { ...runValues(ctx), limit: Number.isFinite(limit) ? limit : null };
  const result = await ctx.pool.query<{ n: string }>(bind(ctx.state.count, values));
  return Number(result.rows[0]?.n ?? 0);
}

/** The checkpoint: the last `(column, key)` of a batch as text, or null. One from other options is ignored. */
function cursorValues(cursor: Cursor | null, plan: Plan): string[] | null {
  if (!Array.isArray(cursor) || cursor.length !== plan.order.length) return null;
  return cursor.every((v) => typeof v === "string") ? (cursor as string[]) : null;
}

function batchValues(ctx: BatchContext<RetentionOptions, RetentionState>, cursor: string[] | null): Dynamic {
  const values: Dynamic = { ...runValues(ctx), limit: ctx.batchSize };
  cursor?.forEach((v, i) => (values[`cursor${i}`] = v));
  return values;
}

interface BatchRow {
  processed: number;
  cursor: string[] | null;
  sample: string[] | null;
}

/** No cascade: one statement locks, changes and reports the batch. */
async function singleStatementBatch(ctx: BatchContext<RetentionOptions, RetentionState>): Promise<BatchResult> {
  const { plan, batch } = ctx.state;
  const cursor = cursorValues(ctx.cursor, plan);
  const stmt = ctx.dryRun ? (cursor ? batch.dryNext : batch.dryFirst) : cursor ? batch.next : batch.first;
  const result = await run(ctx, plan.table.display, () => ctx.client.query<BatchRow>(bind(stmt, batchValues(ctx, cursor))));
  const row = result.rows[0]!;
  return {
    processed: row.processed,
    cursor: row.cursor ?? cursor,
    // A short batch reached the end of what qualifies. Rows skipped because another
    // transaction held their lock are left behind the cursor: the next run takes them.
    done: row.processed < ctx.batchSize,
    ...(ctx.dryRun ? { sample: row.sample ?? [] } : {}),
  };
}

/** With cascade: lock the batch, delete its children in the order listed, then the rows themselves. */
async function cascadeBatch(
  ctx: BatchContext<RetentionOptions, RetentionState>,
  statements: NonNullable<RetentionState["cascade"]>,
): Promise<BatchResult> {
  const { plan } = ctx.state;
  const cursor = cursorValues(ctx.cursor, plan);
  const lock = cursor ? statements.next : statements.first;
  const locked = await ctx.client.query<string[]>({ ...bind(lock, batchValues(ctx, cursor)), rowMode: "array" });
  const rows = locked.rows;
  if (rows.length === 0) return { processed: 0, cursor, done: true, ...(ctx.dryRun ? { sample: [] } : {}) };

  const extras = cascadeColumns(plan);
  const values: Dynamic = {};
  plan.order.forEach((c, i) => (values[valuesOf(c)] = rows.map((r) => r[i])));
  extras.forEach((c, i) => (values[valuesOf(c)] = rows.map((r) => r[plan.order.length + i])));

  const tables: Record<string, number> = {};
  for (const [i, stmt] of statements.children.entries()) {
    const child = plan.cascade[i]!.table.display;
    const deleted = await run(ctx, child, () => ctx.client.query(bind(stmt, values)));
    tables[child] = (tables[child] ?? 0) + (deleted.rowCount ?? 0);
  }
  const deleted = await run(ctx, plan.table.display, () => ctx.client.query(bind(statements.parents, values)));
  const processed = deleted.rowCount ?? 0;
  tables[plan.table.display] = (tables[plan.table.display] ?? 0) + processed;

  const keyIndexes = plan.keys.map((k) => plan.order.indexOf(k));
  const sample = rows
    .slice(0, SAMPLE_SIZE)
    .map((r) => (keyIndexes.length === 1 ? r[keyIndexes[0]!]! : `(${keyIndexes.map((i) => r[i]).join(",")})`));
  return {
    processed,
    cursor: rows[rows.length - 1]!.slice(0, plan.order.length),
    done: rows.length < ctx.batchSize,
    tables,
    ...(ctx.dryRun ? { sample } : {}),
  };
}

/**
 * Run a statement; a foreign key violation becomes an error saying which table
 * still references the rows and how to fix the entry. The core rolls the whole
 * batch back, so nothing is half deleted.
 */
async function run<R extends pg.QueryResultRow>(
  ctx: BatchContext<RetentionOptions, RetentionState>,
  deleting: string,
  query: () => Promise<pg.QueryResult<R>>,
): Promise<pg.QueryResult<R>> {
  try {
    return await query();
  } catch (error) {
    const pgError = error as { code?: string; constraint?: string; table?: string; schema?: string };
    if (pgError.code !== "23503") throw error;
    const referencing =
      pgError.schema && pgError.table ? `${displayIdent(pgError.schema)}.${displayIdent(pgError.table)}` : "another table";
    const columns = await constraintColumns(ctx.pool, pgError).catch(() => null);
    const column = columns?.length === 1 ? columns[0]! : "<its column>";
    throw new PurgerError(
      "RUN",
      `cannot delete rows of ${deleting}: rows of ${referencing} still reference them through foreign key "${pgError.constraint ?? "?"}"` +
        `${columns ? ` (${columns.join(", ")})` : ""}; the batch was rolled back, nothing was deleted. ` +
        `Add { table: ${referencing}, column: ${column} } to \`cascade\` (delete them too, listed before the table they reference) ` +
        `or to \`unlessReferencedBy\` (keep rows still referenced)`,
      { cause: error, hint: `list ${referencing} under cascade or unlessReferencedBy of this entry` },
    );
  }
}

async function constraintColumns(pool: pg.Pool, e: { constraint?: string; table?: string; schema?: string }): Promise<string[] | null> {
  if (!e.constraint || !e.table || !e.schema) return null;
  const result = await pool.query<{ columns: string[] }>(
    `SELECT ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(num, i)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i) AS columns
       FROM pg_catalog.pg_constraint k
       JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE k.conname = $1 AND c.relname = $2 AND n.nspname = $3`,
    [e.constraint, e.table, e.schema],
  );
  return result.rows[0]?.columns ?? null;
}
