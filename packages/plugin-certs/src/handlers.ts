/**
 * Bin handlers: `<id>.revoke { id, reason? }` revokes one certificate;
 * `<id>.credential { id, reason? }` revokes a provisioning credential and
 * every certificate it references. Each item runs in one transaction with the
 * rows locked `FOR UPDATE`, so duplicate items (or two workers) serialize and
 * the later one finds the work done; and the `table` revoker's row commits
 * with the `revoked` status or not at all. A lock held elsewhere for longer
 * than `LOCK_TIMEOUT` fails the attempt (the bin retries it with backoff)
 * instead of keeping a worker waiting behind it.
 */
import { PurgerError, defineBinHandler, type BinContext } from "@purger/core";
import type { CertsOptions } from "./options.js";
import { isLockTimeout, limitLockWait, LOCK_TIMEOUT, lockCertificates, revokeLocked, type RevokeOutcome } from "./revoke.js";
import type { CertsState } from "./state.js";

export interface RevokePayload {
  /** The certificate's (or credential's) key. */
  id: string | number;
  /** Sent to the revoker (default `unspecified`). */
  reason?: string;
}

const payloadSchema = {
  type: "object",
  additionalProperties: false,
  required: ["id"],
  properties: {
    id: { type: ["string", "integer"], minLength: 1 },
    reason: { type: "string", minLength: 1, maxLength: 1000 },
  },
} as const;

type Ctx = BinContext<CertsOptions, CertsState>;

export const revokeHandler = defineBinHandler<CertsOptions, CertsState, RevokePayload>({
  schema: payloadSchema,
  async handle(ctx, payload) {
    const c = ctx.state.certificates;
    const outcome = await lockWaitIsRetried(
      `certificate ${payload.id}`,
      ctx.transaction(async (client) => {
        await limitLockWait(client);
        const [row] = await badKeyIsPayload(ctx, lockCertificates(client, ctx.state, [payload.id]));
        if (!row) {
          throw new PurgerError("PAYLOAD", `certificate ${JSON.stringify(payload.id)} does not exist in ${c.table.display}`, {
            hint: "the web server must bin the certificate before (or without) deleting its row",
          });
        }
        return revokeLocked({ client, state: ctx.state, row, reason: payload.reason ?? null, signal: ctx.signal, log: ctx.log });
      }),
    );
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
        if (credential.status === revoked) return { outcomes: [] as RevokeOutcome[], credential: false };
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
        const outcomes: RevokeOutcome[] = [];
        for (const row of certificates) {
          outcomes.push(
            await revokeLocked({ client, state: ctx.state, row, reason: payload.reason ?? null, signal: ctx.signal, log: ctx.log }),
          );
        }
        await client.query(`UPDATE ${cr.table.sql} SET ${cr.status.sql} = $2 WHERE ${cr.key.sql} = $1`, [payload.id, revoked]);
        ctx.log.info({ event: "certs:credential:revoked", credential: String(payload.id), certificates: ids.length }, "credential revoked");
        return { outcomes, credential: true };
      }),
    );
    const tables = outcomeTables(result.outcomes);
    if (result.credential) tables.credentials_revoked = 1;
    const processed = Object.values(tables).reduce((a, b) => a + b, 0);
    return { processed, tables };
  },
});

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
