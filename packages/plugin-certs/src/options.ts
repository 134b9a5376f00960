/**
 * The options of one certs entry (these names are a contract: the README
 * documents them). Described once as a JSON Schema, which purger validates
 * every entry against (defaults applied), and as the TypeScript type of the
 * validated value; `defineSchema` makes the compiler check that the two agree.
 */
import { defineSchema, DURATION_PATTERN, type TypedSchema } from "@purger/core";

export interface CertificatesOptions {
  /** The certificates table (`name` or `schema.name`). */
  table: string;
  /** Its key column. @defaultValue the table's single-column primary key */
  key?: string;
  /** The serial column; NULL (or empty) until the certificate is downloaded. */
  serial: string;
  /** The expiry column (timestamptz, timestamp or date); NULL never expires. */
  notAfter: string;
  /** The status column (text or an enum holding the `statuses` values). */
  status: string;
  /**
   * A column where the reason of a deferred revocation waits until the sweep
   * revokes it. Without it, a deferred revocation is sent with reason `unspecified`.
   */
  reason?: string;
}

export interface Statuses {
  /** @defaultValue "active" */
  active: string;
  /** @defaultValue "expired" */
  expired: string;
  /** Revocation requested, waiting for the serial. @defaultValue "revoking" */
  revoking: string;
  /** @defaultValue "revoked" */
  revoked: string;
}

export interface CredentialStatuses {
  /** @defaultValue `statuses.active` */
  active?: string;
  /** @defaultValue `statuses.expired` */
  expired?: string;
  /** @defaultValue `statuses.revoked` */
  revoked?: string;
}

export interface CredentialsOptions {
  /** The provisioning-credentials table. */
  table: string;
  /** Its key column. @defaultValue the table's single-column primary key */
  key?: string;
  /** Columns of `table` holding the key of a certificate (NULL: none). */
  certificates: string[];
  /** The status column. */
  status: string;
  /** When the credential itself expires (optional). */
  expiresAt?: string;
  /** The credential status values, when they differ from the certificates'. */
  statuses?: CredentialStatuses;
}

export interface TableRevokerOptions {
  /** The revocations table: one row per revoked serial. */
  table: string;
  /** @defaultValue "serial" */
  serial?: string;
  /** Written when the column exists (or is named here). @defaultValue "reason" */
  reason?: string;
  /** Written with the transaction time when the column exists (or is named here). @defaultValue "revoked_at" */
  revokedAt?: string;
}

export interface WebhookRevokerOptions {
  /** The endpoint that revokes: it receives `POST { serial, reason }`. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`; interpolate it (`${REVOKE_TOKEN}`), never write it in the file. */
  token?: string;
  /** Time allowed for one request (a duration: `10s`, `500ms`). @defaultValue "10s" */
  timeout: string;
  /** Requests per revocation before the failure is handed to the bin's (or the next sweep's) retry. @defaultValue 3 */
  attempts: number;
}

export type RevokerOptions =
  { table: TableRevokerOptions } | { webhook: WebhookRevokerOptions } | { module: string; options?: Record<string, unknown> };

export interface CertsOptions {
  certificates: CertificatesOptions;
  statuses: Statuses;
  credentials?: CredentialsOptions;
  revoker: RevokerOptions;
  /**
   * The IANA zone in which `notAfter` and `expiresAt` columns of type `timestamp`
   * (without time zone) or `date` hold wall-clock times; `timestamptz` needs none.
   * @defaultValue "UTC"
   */
  timeZone: string;
}

const identifier = { type: "string", minLength: 1 } as const;

const statusValue = { type: "string", minLength: 1 } as const;

export const optionsSchema: TypedSchema<CertsOptions> = defineSchema({
  type: "object",
  additionalProperties: false,
  required: ["certificates", "revoker"],
  properties: {
    timeZone: { type: "string", minLength: 1, default: "UTC" },
    certificates: {
      type: "object",
      additionalProperties: false,
      required: ["table", "serial", "notAfter", "status"],
      properties: {
        table: identifier,
        key: identifier,
        serial: identifier,
        notAfter: identifier,
        status: identifier,
        reason: identifier,
      },
    },
    statuses: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        active: { ...statusValue, default: "active" },
        expired: { ...statusValue, default: "expired" },
        revoking: { ...statusValue, default: "revoking" },
        revoked: { ...statusValue, default: "revoked" },
      },
    },
    credentials: {
      type: "object",
      additionalProperties: false,
      required: ["table", "certificates", "status"],
      properties: {
        table: identifier,
        key: identifier,
        certificates: { type: "array", items: identifier, minItems: 1, uniqueItems: true },
        status: identifier,
        expiresAt: identifier,
        statuses: {
          type: "object",
          additionalProperties: false,
          properties: { active: statusValue, expired: statusValue, revoked: statusValue },
        },
      },
    },
    // One object with the three kinds as properties (not a oneOf of three objects): ajv applies
    // defaults (webhook.timeout, webhook.attempts) only outside oneOf branches.
    revoker: {
      type: "object",
      additionalProperties: false,
      oneOf: [{ required: ["table"] }, { required: ["webhook"] }, { required: ["module"] }],
      dependencies: { options: ["module"] },
      properties: {
        table: {
          type: "object",
          additionalProperties: false,
          required: ["table"],
          properties: { table: identifier, serial: identifier, reason: identifier, revokedAt: identifier },
        },
        webhook: {
          type: "object",
          additionalProperties: false,
          required: ["url"],
          properties: {
            url: { type: "string", pattern: "^https?://" },
            token: { type: "string", minLength: 1 },
            timeout: { type: "string", pattern: DURATION_PATTERN, default: "10s" },
            attempts: { type: "integer", minimum: 1, maximum: 10, default: 3 },
          },
        },
        module: { type: "string", minLength: 1 },
        options: { type: "object" },
      },
    },
  },
});

/** The statuses a credential moves between, resolved against the certificates' ones. */
export function credentialStatuses(options: CertsOptions): Required<CredentialStatuses> {
  const own = options.credentials?.statuses ?? {};
  return {
    active: own.active ?? options.statuses.active,
    expired: own.expired ?? options.statuses.expired,
    revoked: own.revoked ?? options.statuses.revoked,
  };
}
