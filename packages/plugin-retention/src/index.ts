/**
 * `@purger/plugin-retention`: delete (or update) the rows of one table whose
 * clock column is older than the entry's retention, in keyset batches of
 * `(column, key)` locked with `FOR UPDATE SKIP LOCKED`, one transaction each.
 */
import { definePlugin, type BatchContext, type BatchResult, type Cursor, type RunContext } from "@purger/core";
import type pg from "pg";
import { checkEntry } from "./check.js";
import { checkClockFormat, describeSample, type ClockSample } from "./clock-sample.js";
import { cutoffValue } from "./cutoff.js";
import { foreignKeyError, isForeignKeyViolation } from "./foreign-key-error.js";
import { optionsSchema, type RetentionOptions } from "./options.js";
import { resolvePlan, type Plan } from "./resolve.js";
import {
  bind,
  buildBatch,
  buildCascadeDeletes,
  buildCheckedChange,
  buildCount,
  buildGuardCount,
  buildCountAll,
  buildDeleteByKeys,
  buildExplainCount,
  buildLock,
  buildRecheck,
  cascadeColumns,
  hasReferences,
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
  /** What the format check read of the clock (null for `columnFormat: timestamp`). */
  clockSample: ClockSample | null;
  /** The batch statement (no cascade): first batch, then after a cursor; the dry-run variants also sample keys. */
  batch: { first: Statement; next: Statement; dryFirst: Statement; dryNext: Statement };
  /**
   * With cascade: lock; with reference conditions, keep the locked rows that still qualify by them
   * (`recheck`, a fresh snapshot); delete their children in order; delete them.
   */
  cascade: { first: Statement; next: Statement; recheck: Statement | null; children: Statement[]; parents: Statement } | null;
  /** No cascade, reference conditions: lock, then change the locked rows still qualifying by them (a fresh snapshot). */
  checked: { first: Statement; next: Statement; change: Statement; dryChange: Statement } | null;
  /** The qualifying rows (progress). */
  count: Statement;
  /** The qualifying rows and their cascade children: what a run deletes (guards). */
  guardCount: Statement;
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
    // Before any batch (and in doctor): a format the clock's values do not fit would delete rows that are not old.
    const clockSample = await checkClockFormat(ctx.pool, plan, `entry "${ctx.entry.id}", options.columnFormat`);
    const state: RetentionState = {
      plan,
      clockSample,
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
              recheck: hasReferences(plan) ? buildRecheck(plan) : null,
              children: buildCascadeDeletes(plan),
              parents: buildDeleteByKeys(plan),
            },
      checked:
        plan.cascade.length > 0 || !hasReferences(plan)
          ? null
          : {
              first: buildLock(plan, false),
              next: buildLock(plan, true),
              change: buildCheckedChange(plan, false),
              dryChange: buildCheckedChange(plan, true),
            },
      count: buildCount(plan),
      guardCount: buildGuardCount(plan),
      explainCount: buildExplainCount(plan),
      countAll: buildCountAll(plan),
    };
    ctx.log.debug(
      { table: plan.table.display, sql: (state.cascade ?? state.checked ?? state.batch).next.text },
      "retention statement prepared",
    );
    return state;
  },

  async batch(ctx) {
    const { cascade, checked } = ctx.state;
    if (cascade) return cascadeBatch(ctx, cascade);
    return checked ? checkedBatch(ctx, checked) : singleStatementBatch(ctx);
  },

  async estimate(ctx) {
    // The planner's estimate costs a plan, not a scan; a small backlog is then counted exactly
    // (cheap, and the progress bar ends at its true total). A large one keeps the estimate: an
    // exact count of millions of rows would cost a noticeable share of the run itself (bench/p1-retention.ts).
    const explained = await ctx.pool.query<{ "QUERY PLAN": Array<{ Plan: { "Plan Rows": number } }> }>(
      bind(ctx.state.explainCount, runValues(ctx)),
    );
    const planned = Math.round(explained.rows[0]?.["QUERY PLAN"][0]?.Plan["Plan Rows"] ?? 0);
    if (planned > EXACT_ESTIMATE_LIMIT) return planned;
    const exact = await countQualifying(ctx, EXACT_ESTIMATE_LIMIT + 1);
    return exact > EXACT_ESTIMATE_LIMIT ? Math.max(exact, planned) : exact;
  },

  async count(ctx, limit) {
    return countQualifying(ctx, limit, ctx.state.guardCount);
  },

  async countAll(ctx) {
    const result = await ctx.pool.query<{ n: string }>(bind(ctx.state.countAll, {}));
    return Number(result.rows[0]?.n ?? 0);
  },

  async check(ctx) {
    const { plan, clockSample } = ctx.state;
    const found = await checkEntry(ctx.pool, plan);
    return clockSample ? [{ level: "ok", message: describeSample(plan, clockSample) }, ...found] : found;
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

async function countQualifying(
  ctx: RunContext<RetentionOptions, RetentionState>,
  limit: number,
  stmt: Statement = ctx.state.count,
): Promise<number> {
  const values = { ...runValues(ctx), limit: Number.isFinite(limit) ? limit : null };
  const result = await ctx.pool.query<{ n: string }>(bind(stmt, values));
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

/** Lock the batch's rows: their order columns (and the columns cascade entries reference) as text. */
async function lockBatch(
  ctx: BatchContext<RetentionOptions, RetentionState>,
  statements: { first: Statement; next: Statement },
  cursor: string[] | null,
): Promise<string[][]> {
  const lock = cursor ? statements.next : statements.first;
  const locked = await ctx.client.query<string[]>({ ...bind(lock, batchValues(ctx, cursor)), rowMode: "array" });
  return locked.rows;
}

/** The `values:<column>` arrays of rows as `lockBatch` returns them. */
function rowValues(plan: Plan, rows: string[][]): Dynamic {
  const values: Dynamic = {};
  plan.order.forEach((c, i) => (values[valuesOf(c)] = rows.map((r) => r[i])));
  cascadeColumns(plan).forEach((c, i) => (values[valuesOf(c)] = rows.map((r) => r[plan.order.length + i])));
  return values;
}

/** No cascade, reference conditions: lock the batch, then change what still qualifies by its references. */
async function checkedBatch(
  ctx: BatchContext<RetentionOptions, RetentionState>,
  statements: NonNullable<RetentionState["checked"]>,
): Promise<BatchResult> {
  const { plan } = ctx.state;
  const cursor = cursorValues(ctx.cursor, plan);
  const rows = await lockBatch(ctx, statements, cursor);
  if (rows.length === 0) return { processed: 0, cursor, done: true, ...(ctx.dryRun ? { sample: [] } : {}) };
  const change = ctx.dryRun ? statements.dryChange : statements.change;
  const result = await run(ctx, plan.table.display, () =>
    ctx.client.query<{ processed: number; sample: string[] | null }>(bind(change, { ...runValues(ctx), ...rowValues(plan, rows) })),
  );
  const row = result.rows[0]!;
  return {
    processed: row.processed,
    // Rows kept by a reference seen only now are behind the cursor: the next run looks at them again.
    cursor: rows[rows.length - 1]!.slice(0, plan.order.length),
    done: rows.length < ctx.batchSize,
    ...(ctx.dryRun ? { sample: row.sample ?? [] } : {}),
  };
}

/**
 * With cascade: lock the batch, keep what still qualifies by its references (a
 * fresh snapshot), delete its children in the order listed, then the rows
 * themselves. The children go only with a parent that goes.
 */
async function cascadeBatch(
  ctx: BatchContext<RetentionOptions, RetentionState>,
  statements: NonNullable<RetentionState["cascade"]>,
): Promise<BatchResult> {
  const { plan } = ctx.state;
  const cursor = cursorValues(ctx.cursor, plan);
  const locked = await lockBatch(ctx, statements, cursor);
  if (locked.length === 0) return { processed: 0, cursor, done: true, ...(ctx.dryRun ? { sample: [] } : {}) };
  const nextCursor = locked[locked.length - 1]!.slice(0, plan.order.length);
  const done = locked.length < ctx.batchSize;
  const rows = statements.recheck
    ? (
        await ctx.client.query<string[]>({
          ...bind(statements.recheck, { ...runValues(ctx), ...rowValues(plan, locked) }),
          rowMode: "array",
        })
      ).rows
    : locked;
  if (rows.length === 0) return { processed: 0, cursor: nextCursor, done, ...(ctx.dryRun ? { sample: [] } : {}) };
  const values = rowValues(plan, rows);

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
    cursor: nextCursor,
    done,
    tables,
    ...(ctx.dryRun ? { sample } : {}),
  };
}

/** Run a statement; a foreign key violation becomes an error saying which table still references the rows and how to fix the entry. */
async function run<R extends pg.QueryResultRow>(
  ctx: BatchContext<RetentionOptions, RetentionState>,
  deleting: string,
  query: () => Promise<pg.QueryResult<R>>,
): Promise<pg.QueryResult<R>> {
  try {
    return await query();
  } catch (error) {
    if (!isForeignKeyViolation(error)) throw error;
    throw await foreignKeyError(ctx.pool, ctx.state.plan, deleting, error);
  }
}
