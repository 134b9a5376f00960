/**
 * @purger/plugin-certs — certificate lifecycle: expire certificates past
 * `notAfter` and the provisioning credentials that depend on them (status
 * updates, never deletes), and revoke certificates through a revoker adapter,
 * now when the serial is known or later, by the sweep, when it appears.
 */
import { definePlugin } from "@purger/core";
import { checkEntry } from "./check.js";
import { credentialHandler, revokeHandler } from "./handlers.js";
import { optionsSchema } from "./options.js";
import { prepareState } from "./state.js";
import { countAll, countQualifying, sweepBatch } from "./sweep.js";
import { redactUrl } from "./webhook-revoker.js";

export default definePlugin({
  name: "@purger/plugin-certs",
  version: "0.1.0",
  options: optionsSchema,
  // `notAfter` (and `expiresAt`) is the deadline; there is no retention window.
  usesRetention: false,
  prepare: prepareState,
  async release(state) {
    await state.revoker.close?.();
  },
  batch: sweepBatch,
  estimate: (ctx) => countQualifying(ctx, null),
  count: (ctx, limit) => countQualifying(ctx, limit),
  countAll,
  check: checkEntry,
  describe(options) {
    const revoker = options.revoker;
    const via =
      "table" in revoker
        ? `revocations table ${revoker.table.table}`
        : "webhook" in revoker
          ? `webhook ${redactUrl(revoker.webhook.url)}`
          : `revoker ${revoker.module}`;
    const credentials = options.credentials ? ` + credentials ${options.credentials.table}` : "";
    return `certificates ${options.certificates.table}${credentials} → ${via}`;
  },
  bin: {
    revoke: revokeHandler,
    credential: credentialHandler,
  },
});

export { defineRevoker, idempotencyKey } from "./revoker.js";
export type { RevokeRequest, Revoker, RevokerFactory, RevokerInit } from "./revoker.js";
export type {
  CertificatesOptions,
  CertsOptions,
  CredentialStatuses,
  CredentialsOptions,
  RevokerOptions,
  Statuses,
  TableRevokerOptions,
  WebhookRevokerOptions,
} from "./options.js";
export type { RevokePayload } from "./handlers.js";
export { COUNTS } from "./sweep.js";
