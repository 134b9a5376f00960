/**
 * The scheduled sweep, in three phases, each a keyset scan (by key), updates only:
 *
 * 1. `certificates`: active certificates past `notAfter` → expired (rows
 *    locked `FOR UPDATE SKIP LOCKED` in the batch's transaction);
 * 2. `revocations`: `revoking` certificates whose serial is now known → the
 *    revoker, then revoked, one certificate at a time outside the batch's
 *    transaction (`revokePendingRow`): no lock is held while a revoker works,
 *    the calls stop at the slice's deadline, and one failed revocation leaves
 *    that certificate `revoking` and fails the run at the end;
 * 3. `credentials`: active credentials whose `expiresAt` passed or that
 *    reference an expired or revoked certificate → expired.
 *
 * A batch fills up to `batchSize` items across phases. The cursor (`SweepCursor`)
 * says where the next batch resumes; the keyset also keeps a dry run (whose
 * updates the core rolls back) from counting a row twice. Phase 3 counts the
 * certificates that phases 1 and 2 expire or revoke in this run, so a dry run's
 * counts are the real run's.
 */
import { PurgerError, type BatchContext, type BatchResult, type ColumnInfo, type RunContext } from "@purger/core";
import type { CertsOptions } from "./options.js";
import { certificateColumns, isLockTimeout, LOCK_TIMEOUT, revokePendingRow, type CertificateRow } from "./revoke.js";
import type { CertsState } from "./state.js";

type Phase = "certificates" | "revocations" | "credentials" | "report";

export interface SweepCursor {
  phase: Phase;
  /** Key (as text) of the last row the phase handled; null at its start. */
  after: string | null;
  /** Revocations that failed in this run so far, and the first errors. */
  failed: number;
  errors: string[];
}

/** The names of `BatchResult.tables`. */
export const COUNTS = {
  certificatesExpired: "certificates_expired",
  certificatesRevoked: "certificates_revoked",
  credentialsExpired: "credentials_expired",
  revocationsFailed: "revocations_failed",
} as const;

const MAX_ERRORS = 5;

type Ctx = BatchContext<CertsOptions, CertsState>;

export async function sweepBatch(ctx: Ctx): Promise<BatchResult> {
  let cursor = readCursor(ctx.cursor);
  if (cursor.phase === "report" && cursor.failed > 0) {
    // A batch of its own, after every change is committed: the run ends failed so the refusals are seen.
    throw new PurgerError(
      "RUN",
      `${cursor.failed} revocation(s) failed and stay ${ctx.state.statuses.revoking} for the next sweep: ${cursor.errors.join("; ")}`,
      { hint: "see the log (event certs:revoke:fail) for each certificate; the next sweep tries them again" },
    );
  }
  const tables: Record<string, number> = {};
  const sample: string[] = [];
  let processed = 0;
  let room = ctx.batchSize;

  let ran = false;
  while (room > 0 && cursor.phase !== "report" && !ctx.signal.aborted) {
    // Revocations start a batch of their own: rows this batch's transaction already locked would stay locked
    // while the revokers are called.
    if (cursor.phase === "revocations" && ran) break;
    ran = true;
    const step = await runPhase(ctx, cursor, room);
    processed += step.changed;
    room -= step.handled;
    for (const [name, n] of Object.entries(step.tables)) if (n > 0) tables[name] = (tables[name] ?? 0) + n;
    sample.push(...step.sample.slice(0, Math.max(0, 10 - sample.length)));
    cursor = {
      ...cursor,
      failed: cursor.failed + step.failures.length,
      errors: [...cursor.errors, ...step.failures].slice(0, MAX_ERRORS),
      ...(step.exhausted ? { phase: nextPhase(ctx.state, cursor.phase), after: null } : { after: step.last ?? cursor.after }),
    };
    if (!step.exhausted) break;
  }
  const done = cursor.phase === "report" && cursor.failed === 0;
  return { processed, cursor: { ...cursor }, done, tables, sample };
}

interface PhaseStep {
  /** Rows examined (what fills the batch). */
  handled: number;
  /** Rows changed (or that a dry run would change). */
  changed: number;
  exhausted: boolean;
  last: string | null;
  tables: Record<string, number>;
  sample: string[];
  failures: string[];
}

async function runPhase(ctx: Ctx, cursor: SweepCursor, limit: number): Promise<PhaseStep> {
  switch (cursor.phase) {
    case "certificates": {
      const ids = await expireCertificates(ctx, cursor.after, limit);
      return updated(ids, limit, COUNTS.certificatesExpired, "certificate");
    }
    case "credentials": {
      const ids = await expireCredentials(ctx, cursor.after, limit);
      return updated(ids, limit, COUNTS.credentialsExpired, "credential");
    }
    case "revocations":
      return revokePending(ctx, cursor.after, limit);
    case "report":
      return { handled: 0, changed: 0, exhausted: true, last: null, tables: {}, sample: [], failures: [] };
  }
}

function updated(ids: string[], limit: number, name: string, what: string): PhaseStep {
  return {
    handled: ids.length,
    changed: ids.length,
    exhausted: ids.length < limit,
    last: ids.at(-1) ?? null,
    tables: { [name]: ids.length },
    sample: ids.slice(0, 10).map((id) => `${what} ${id}`),
    failures: [],
  };
}

function nextPhase(state: CertsState, phase: Phase): Phase {
  if (phase === "certificates") return "revocations";
  if (phase === "revocations") return state.credentials ? "credentials" : "report";
  return "report";
}

function readCursor(value: unknown): SweepCursor {
  const start: SweepCursor = { phase: "certificates", after: null, failed: 0, errors: [] };
  if (value === null || typeof value !== "object" || Array.isArray(value)) return start;
  const v = value as Partial<SweepCursor>;
  const phases: Phase[] = ["certificates", "revocations", "credentials", "report"];
  return {
    phase: v.phase && phases.includes(v.phase) ? v.phase : "certificates",
    after: typeof v.after === "string" ? v.after : null,
    failed: typeof v.failed === "number" ? v.failed : 0,
    errors: Array.isArray(v.errors) ? v.errors.filter((e): e is string => typeof e === "string") : [],
  };
}

/** Bound values of one statement: `add` returns the placeholder. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    return `$${this.values.push(value)}`;
  }
}

/**
 * `alias.column < now` in the column's own kind of time (`now` is bound as ISO
 * text). A `timestamp` or `date` holds wall-clock time in the entry's zone, so
 * `now` is converted to it rather than the column to an instant: the session's
 * TimeZone plays no part, and an index on the column still serves.
 */
export function before(state: CertsState, alias: string, column: ColumnInfo, now: string, params: Params): string {
  const instant = `${now}::text::timestamptz`;
  if (column.type.base === "timestamptz") return `${alias}.${column.sql} < ${instant}`;
  const wall = `(${instant} AT TIME ZONE ${params.add(state.timeZone)}::text)`;
  return `${alias}.${column.sql} < ${column.type.base === "date" ? `${wall}::date` : wall}`;
}

/** Certificates that phase 1 expires (alias `c`). */
export function toExpire(state: CertsState, params: Params, now: string): string {
  const c = state.certificates;
  return `c.${c.status.sql} = ${params.add(state.statuses.active)} AND ${before(state, "c", c.notAfter, now, params)}`;
}

/** Certificates that phase 2 revokes (alias `c`). */
export function toRevoke(state: CertsState, params: Params): string {
  const c = state.certificates;
  return `c.${c.status.sql} = ${params.add(state.statuses.revoking)} AND NULLIF(c.${c.serial.sql}::text, '') IS NOT NULL`;
}

/** Credentials that phase 3 expires (alias `cr`), judging the certificates as they will be after phases 1 and 2. */
export function toExpireCredential(state: CertsState, params: Params, now: string): string {
  const cr = state.credentials!;
  const c = state.certificates;
  const dead = `c.${c.status.sql} IN (${params.add(state.statuses.expired)}, ${params.add(state.statuses.revoked)})`;
  const references = cr.references.map((r) => `cr.${r.sql}`).join(", ");
  const certificateGone = `EXISTS (SELECT 1 FROM ${c.table.sql} c WHERE c.${c.key.sql} IN (${references}) AND (${dead} OR (${toExpire(state, params, now)}) OR (${toRevoke(state, params)})))`;
  const own = cr.expiresAt ? `${before(state, "cr", cr.expiresAt, now, params)} OR ` : "";
  return `cr.${cr.status.sql} = ${params.add(state.credentialStatuses.active)} AND (${own}${certificateGone})`;
}

async function expireCertificates(ctx: Ctx, after: string | null, limit: number): Promise<string[]> {
  const c = ctx.state.certificates;
  const params = new Params();
  const now = params.add(ctx.startedAt.toISOString());
  const { rows } = await ctx.client.query<{ id: string }>(
    `WITH picked AS (
       SELECT c.${c.key.sql} AS k FROM ${c.table.sql} c
        WHERE ${toExpire(ctx.state, params, now)}${keysetAfter("c", c.key, after, params)}
        ORDER BY c.${c.key.sql} LIMIT ${params.add(limit)} FOR UPDATE SKIP LOCKED
     ), changed AS (
       UPDATE ${c.table.sql} c SET ${c.status.sql} = ${params.add(ctx.state.statuses.expired)}
         FROM picked WHERE c.${c.key.sql} = picked.k RETURNING c.${c.key.sql} AS k
     )
     SELECT k::text AS id FROM changed ORDER BY k`,
    params.values,
  );
  return rows.map((r) => r.id);
}

async function expireCredentials(ctx: Ctx, after: string | null, limit: number): Promise<string[]> {
  const cr = ctx.state.credentials!;
  const params = new Params();
  const now = params.add(ctx.startedAt.toISOString());
  const { rows } = await ctx.client.query<{ id: string }>(
    `WITH picked AS (
       SELECT cr.${cr.key.sql} AS k FROM ${cr.table.sql} cr
        WHERE ${toExpireCredential(ctx.state, params, now)}${keysetAfter("cr", cr.key, after, params)}
        ORDER BY cr.${cr.key.sql} LIMIT ${params.add(limit)} FOR UPDATE OF cr SKIP LOCKED
     ), changed AS (
       UPDATE ${cr.table.sql} cr SET ${cr.status.sql} = ${params.add(ctx.state.credentialStatuses.expired)}
         FROM picked WHERE cr.${cr.key.sql} = picked.k RETURNING cr.${cr.key.sql} AS k
     )
     SELECT k::text AS id FROM changed ORDER BY k`,
    params.values,
  );
  return rows.map((r) => r.id);
}

async function revokePending(ctx: Ctx, after: string | null, limit: number): Promise<PhaseStep> {
  const c = ctx.state.certificates;
  const params = new Params();
  // Read through the pool, without locks: each certificate is claimed on its own while it is revoked,
  // so no lock (and nothing in the batch's transaction) waits on a revoker.
  const { rows } = await ctx.pool.query<CertificateRow & { serial: string }>(
    `SELECT ${certificateColumns(ctx.state)} FROM ${c.table.sql} c
      WHERE ${toRevoke(ctx.state, params)}${keysetAfter("c", c.key, after, params)}
      ORDER BY c.${c.key.sql} LIMIT ${params.add(limit)}`,
    params.values,
  );
  const step: PhaseStep = { handled: 0, changed: 0, exhausted: rows.length < limit, last: null, tables: {}, sample: [], failures: [] };
  const deadline = ctx.deadline ? AbortSignal.timeout(Math.max(0, ctx.deadline.getTime() - Date.now())) : null;
  const signal = deadline ? AbortSignal.any([ctx.signal, deadline]) : ctx.signal;
  const outOfTime = () => ctx.deadline !== undefined && Date.now() >= ctx.deadline.getTime();
  for (const row of rows) {
    if (ctx.signal.aborted || outOfTime()) {
      // Shutdown, or the slice is up: the next slice starts again at this row.
      step.exhausted = false;
      break;
    }
    if (ctx.dryRun) {
      // A dry run calls no revoker: count what would be revoked.
      step.handled += 1;
      step.last = row.id;
      step.changed += 1;
      step.sample.push(`certificate ${row.id} (serial ${row.serial})`);
      continue;
    }
    let error: unknown = null;
    let outcome: "revoked" | "skipped" = "skipped";
    try {
      outcome = await revokePendingRow({ pool: ctx.pool, state: ctx.state, row, signal, log: ctx.log });
    } catch (caught) {
      error = caught;
    }
    if (error !== null && ctx.signal.aborted) {
      // Interrupted (shutdown, cancel), not refused: the next slice starts again at this row.
      step.exhausted = false;
      break;
    }
    step.handled += 1;
    step.last = row.id;
    if (error === null) {
      if (outcome === "revoked") {
        step.changed += 1;
        step.sample.push(`certificate ${row.id}`);
      }
      continue;
    }
    // Past the deadline the call was cut short: a failure of this certificate (not a resume point), or a
    // revoker that never answers would take every slice and starve the certificates after it.
    const message = deadline?.aborted
      ? "the revoker had not finished when the entry's timeout ended the slice"
      : isLockTimeout(error)
        ? `its row or revocation stayed locked by another transaction for ${LOCK_TIMEOUT} (lock_timeout)`
        : error instanceof Error
          ? error.message
          : String(error);
    ctx.log.error(
      { event: "certs:revoke:fail", certificate: row.id, serial: row.serial, error: message },
      "revocation failed; the certificate stays revoking",
    );
    step.failures.push(`certificate ${row.id}: ${message}`);
    if (deadline?.aborted) {
      step.exhausted = false;
      break;
    }
  }
  step.tables[COUNTS.certificatesRevoked] = step.changed;
  step.tables[COUNTS.revocationsFailed] = step.failures.length;
  return step;
}

function keysetAfter(alias: string, key: ColumnInfo, after: string | null, params: Params): string {
  return after === null ? "" : ` AND ${alias}.${key.sql} > ${params.add(after)}`;
}

/** Items left: certificates to expire, pending revocations with a serial, credentials to expire (each capped at `limit` when given). */
export async function countQualifying(ctx: RunContext<CertsOptions, CertsState>, limit: number | null): Promise<number> {
  const { state, pool } = ctx;
  const c = state.certificates;
  const params = new Params();
  const now = params.add(ctx.startedAt.toISOString());
  const cap = limit === null ? "" : ` LIMIT ${params.add(limit)}`;
  const parts = [
    `SELECT count(*) AS n FROM (SELECT 1 FROM ${c.table.sql} c WHERE ${toExpire(state, params, now)}${cap}) s`,
    `SELECT count(*) AS n FROM (SELECT 1 FROM ${c.table.sql} c WHERE ${toRevoke(state, params)}${cap}) s`,
  ];
  if (state.credentials) {
    parts.push(
      `SELECT count(*) AS n FROM (SELECT 1 FROM ${state.credentials.table.sql} cr WHERE ${toExpireCredential(state, params, now)}${cap}) s`,
    );
  }
  const { rows } = await pool.query<{ total: string }>(
    `SELECT sum(n)::text AS total FROM (${parts.join(" UNION ALL ")}) counts`,
    params.values,
  );
  const total = Number(rows[0]?.total ?? 0);
  return limit === null ? total : Math.min(total, limit);
}

/** All rows of the targets (guard `maxFraction`). */
export async function countAll(ctx: RunContext<CertsOptions, CertsState>): Promise<number> {
  const { state } = ctx;
  const parts = [`SELECT count(*) AS n FROM ${state.certificates.table.sql}`];
  if (state.credentials) parts.push(`SELECT count(*) AS n FROM ${state.credentials.table.sql}`);
  const { rows } = await ctx.pool.query<{ total: string }>(`SELECT sum(n)::text AS total FROM (${parts.join(" UNION ALL ")}) counts`);
  return Number(rows[0]?.total ?? 0);
}
