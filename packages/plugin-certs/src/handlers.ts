/**
 * Bin handlers: `<id>.revoke { id, reason? }` revokes one certificate;
 * `<id>.credential { id, reason? }` revokes a provisioning credential and
 * every certificate it references. Each item locks its rows `FOR UPDATE` in
 * one transaction, so duplicate items (or two workers) serialize and the
 * later one finds the work done; the `table` revoker's row commits with the
 * `revoked` status or not at all. An `external` revoker (the webhook) is
 * called after that transaction, with no lock held, and a short transaction
 * then marks the certificate (and the credential) revoked; a crash in between
 * leaves the item to be retried, which calls again with the same idempotency
 * key. A lock held elsewhere for longer than `LOCK_TIMEOUT` fails the attempt
 * (the bin retries it with backoff) instead of keeping a worker waiting.
 */
import { PurgerError, defineBinHandler, defineSchema, type BinContext, type TypedSchema } from "@purger/core";
import type { CertsOptions } from "./options.js";
import type pg from "pg";
import {
  DEFAULT_REASON,
  isLockTimeout,
  limitLockWait,
  LOCK_TIMEOUT,
  lockCertificates,
  revokeExternally,
  revokeLocked,
  type CertificateRow,
  type LockedOutcome,
  type RevokeOutcome,
} from "./revoke.js";
import type { CertsState } from "./state.js";

export interface RevokePayload {
  /** The certificate's (or credential's) key. */
  id: string | number;
  /** Sent to the revoker (default `unspecified`). */
  reason?: string;
}

const payloadSchema: TypedSchema<RevokePayload> = defineSchema({
  type: "object",
  additionalProperties: false,
  required: ["id"],
  properties: {
    id: { type: ["string", "integer"], minLength: 1 },
    reason: { type: "string", minLength: 1, maxLength: 1000 },
  },
});

type Ctx = BinContext<CertsOptions, CertsState>;

export const revokeHandler = defineBinHandler<CertsOptions, CertsState, RevokePayload>({
  schema: payloadSchema,
  async handle(ctx, payload) {
    const c = ctx.state.certificates;
    const outcomeOf = await lockWaitIsRetried(
      `certificate ${payload.id}`,
      ctx.transaction(async (client) => {
        await limitLockWait(client);
        const [row] = await badKeyIsPayload(ctx, lockCertificates(client, ctx.state, [payload.id]));
        if (!row) {
          throw new PurgerError("PAYLOAD", `certificate ${JSON.stringify(payload.id)} does not exist in ${c.table.display}`, {
            hint: "the web server must bin the certificate before (or without) deleting its row",
          });
        }
        const locked = await revokeLocked({
          client,
          state: ctx.state,
          row,
          reason: payload.reason ?? null,
          signal: ctx.signal,
          log: ctx.log,
        });
        return { row, locked };
      }),
    );
    const outcome = await finishExternal(ctx, outcomeOf.row, outcomeOf.locked, payload.reason ?? null, `certificate ${payload.id}`);
    return { processed: outcome === "unchanged" ? 0 : 1, tables: outcomeTables([outcome]) };
  },
});

export const credentialHandler = defineBinHandler<CertsOptions, CertsState, RevokePayload>({
  schema: payloadSchema,
  validate(_payload, options) {
    return options.credentials ? null : "this entry has no `credentials` option, so it revokes no credentials";
  },
  async handle(ctx, payload) {
    const cr = ctx.state.credentials;
    if (!cr) throw new PurgerError("CONFIG", `entry ${ctx.entry.id} has no \`credentials\` option`);
    const revoked = ctx.state.credentialStatuses.revoked;
    const markCredential = (client: pg.ClientBase) =>
      client.query(`UPDATE ${cr.table.sql} SET ${cr.status.sql} = $2 WHERE ${cr.key.sql} = $1`, [payload.id, revoked]);
    const result = await lockWaitIsRetried(
      `credential ${payload.id}`,
      ctx.transaction(async (client) => {
        await limitLockWait(client);
        const references = cr.references.map((r, i) => `${r.sql}::text AS r${i}`).join(", ");
        const { rows } = await badKeyIsPayload(
          ctx,
          client.query<Record<string, string | null>>(
            `SELECT ${cr.status.sql}::text AS status, ${references} FROM ${cr.table.sql} WHERE ${cr.key.sql} = $1 FOR UPDATE`,
            [payload.id],
          ),
        );
        const credential = rows[0];
        if (!credential) {
          throw new PurgerError("PAYLOAD", `credential ${JSON.stringify(payload.id)} does not exist in ${cr.table.display}`);
        }
        if (credential.status === revoked) return { locked: [] as Array<[CertificateRow, LockedOutcome]>, credential: false, ids: 0 };
        const ids = [
          ...new Set(cr.references.map((_, i) => credential[`r${i}`]).filter((id): id is string => id !== null && id !== undefined)),
        ];
        const certificates = ids.length > 0 ? await lockCertificates(client, ctx.state, ids) : [];
        for (const id of ids) {
          if (!certificates.some((row) => row.id === id)) {
            ctx.log.warn(
              { event: "certs:credential:missing-certificate", credential: String(payload.id), certificate: id },
              "a referenced certificate does not exist",
            );
          }
        }
        const locked: Array<[CertificateRow, LockedOutcome]> = [];
        for (const row of certificates) {
          locked.push([
            row,
            await revokeLocked({ client, state: ctx.state, row, reason: payload.reason ?? null, signal: ctx.signal, log: ctx.log }),
          ]);
        }
        // With external calls still to make, the credential is marked after them (below), in a transaction of its own.
        if (!locked.some(([, outcome]) => outcome === "call")) await markCredential(client);
        return { locked, credential: true, ids: ids.length };
      }),
    );
    const outcomes: RevokeOutcome[] = [];
    for (const [row, locked] of result.locked) {
      outcomes.push(await finishExternal(ctx, row, locked, payload.reason ?? null, `credential ${payload.id}`));
    }
    if (result.locked.some(([, outcome]) => outcome === "call")) {
      await lockWaitIsRetried(
        `credential ${payload.id}`,
        ctx.transaction(async (client) => {
          await limitLockWait(client);
          await markCredential(client);
        }),
      );
    }
    if (result.credential) {
      ctx.log.info({ event: "certs:credential:revoked", credential: String(payload.id), certificates: result.ids }, "credential revoked");
    }
    const tables = outcomeTables(outcomes);
    if (result.credential) tables.credentials_revoked = 1;
    const processed = Object.values(tables).reduce((a, b) => a + b, 0);
    return { processed, tables };
  },
});

/** After the locking transaction: make the call `revokeLocked` left to do (an external revoker), then mark the certificate. */
async function finishExternal(
  ctx: Ctx,
  row: CertificateRow,
  locked: LockedOutcome,
  reason: string | null,
  what: string,
): Promise<RevokeOutcome> {
  if (locked !== "call") return locked;
  const done = await lockWaitIsRetried(
    what,
    revokeExternally({
      pool: ctx.pool,
      state: ctx.state,
      row: { ...row, serial: row.serial! },
      reason: reason ?? row.reason ?? DEFAULT_REASON,
      from: null,
      signal: ctx.signal,
      log: ctx.log,
    }),
  );
  return done ? "revoked" : "unchanged";
}

function outcomeTables(outcomes: RevokeOutcome[]): Record<string, number> {
  const tables: Record<string, number> = {};
  const revoked = outcomes.filter((o) => o === "revoked").length;
  const deferred = outcomes.filter((o) => o === "deferred").length;
  if (revoked > 0) tables.certificates_revoked = revoked;
  if (deferred > 0) tables.certificates_revoking = deferred;
  return tables;
}

/** An id that is not a valid value of the key's type (a uuid key given "42") is a bad payload, not a retryable failure. */
async function badKeyIsPayload<T>(ctx: Ctx, query: Promise<T>): Promise<T> {
  try {
    return await query;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "22P02" || code === "22003" || code === "22007" || code === "22008") {
      throw new PurgerError("PAYLOAD", `bin payload for ${ctx.item.kind}: id is not a valid key: ${(error as Error).message}`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** A lock wait given up is an ordinary failure (retried with backoff), named for the item rather than PostgreSQL's wording. */
async function lockWaitIsRetried<T>(what: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (!isLockTimeout(error)) throw error;
    throw new Error(`${what}: a row it needs stayed locked by another transaction for ${LOCK_TIMEOUT} (lock_timeout); retried later`, {
      cause: error,
    });
  }
}
