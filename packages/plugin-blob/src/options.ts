/**
 * The options of one blob entry (these names are a contract: the README
 * documents them). One entry is one bucket of one S3-compatible endpoint.
 * Described once as a JSON Schema, which purger validates every entry against
 * (defaults applied), and as the TypeScript type of the validated value;
 * `defineSchema` makes the compiler check that the two agree.
 */
import { defineSchema, DURATION_PATTERN, type TypedSchema } from "@purger/core";

/** The table of a presigned-upload workflow whose stale pending rows the sweep removes. */
export interface UploadsOptions {
  /** The table: `name` (searched in the search_path) or `schema.name`; double-quote a part holding a dot. */
  table: string;
  /** The clock: a row is stale when `column < cutoff` (now − the entry's retention). */
  column: string;
  /** The boolean column that says the upload completed; only rows where it is `false` are swept. */
  flag: string;
  /** The column holding the object's key in the bucket. */
  objectKey: string;
  /** The row's unique, NOT NULL key (one column). @defaultValue the table's single-column primary key */
  key?: string;
  /**
   * The IANA zone whose wall-clock times a `timestamp` (without time zone) or `date` clock holds; unused for
   * `timestamptz`. @defaultValue "UTC"
   */
  timeZone: string;
}

export interface BlobOptions {
  /** The bucket. Nothing outside it is ever touched. */
  bucket: string;
  /** An S3-compatible endpoint URL (MinIO, R2, s3rver …). @defaultValue AWS for `region` */
  endpoint?: string;
  /** @defaultValue "us-east-1" */
  region: string;
  /** Address the bucket in the path (`endpoint/bucket/key`) instead of the host name; most non-AWS servers need it. @defaultValue false */
  forcePathStyle: boolean;
  /** S3 requests in flight at once (DeleteObjects of up to 1 000 keys each). @defaultValue 4 */
  concurrency: number;
  /**
   * Whether the bucket keeps versions: `auto` asks the bucket (GetBucketVersioning; a server that
   * cannot answer counts as unversioned), `true` deletes every version and delete marker, `false`
   * deletes current objects only. @defaultValue "auto"
   */
  versions: "auto" | boolean;
  /**
   * A regular expression (JavaScript, `u` flag) every `<id>.prefix` payload's prefix must match, and every
   * `<id>.object` key must lie under (some prefix of it ending in `/`, or the key itself, matches).
   * Checked at enqueue and again when handled. Unset: any prefix.
   */
  allowPrefix?: string;
  /** The longest one S3 request may go unanswered before it is aborted and retried (a duration). @defaultValue "30s" */
  requestTimeout: string;
  /** Sweep stale pending uploads (the entry then needs a `retention`). */
  uploads?: UploadsOptions;
}

const identifier = { type: "string", minLength: 1, maxLength: 255 } as const;

export const optionsSchema: TypedSchema<BlobOptions> = defineSchema({
  type: "object",
  properties: {
    bucket: { type: "string", minLength: 1, maxLength: 255, description: "The bucket; nothing outside it is ever touched." },
    endpoint: { type: "string", minLength: 1, pattern: "^https?://", description: "S3-compatible endpoint URL; absent → AWS." },
    region: { type: "string", minLength: 1, default: "us-east-1" },
    forcePathStyle: { type: "boolean", default: false, description: "Path-style addressing (most non-AWS servers)." },
    concurrency: { type: "integer", minimum: 1, maximum: 64, default: 4, description: "S3 requests in flight at once." },
    versions: {
      anyOf: [{ const: "auto" }, { type: "boolean" }],
      default: "auto",
      description: "auto: ask the bucket; true: delete every version and delete marker; false: current objects only.",
    },
    allowPrefix: {
      type: "string",
      minLength: 1,
      maxLength: 1024,
      format: "regex",
      description: 'Regular expression the prefixes (and object keys) of this entry\'s bin items must match, e.g. "^teams/\\d+/$".',
    },
    requestTimeout: {
      type: "string",
      pattern: DURATION_PATTERN,
      default: "30s",
      description: "Longest wait for one S3 answer before the request is aborted and retried.",
    },
    uploads: {
      type: "object",
      description: "Sweep rows of a presigned-upload table that stayed pending longer than the retention.",
      properties: {
        table: { ...identifier, description: "name or schema.name" },
        column: { ...identifier, description: "timestamp of the upload's creation (the clock)" },
        flag: { ...identifier, description: "boolean column: true once the upload completed" },
        objectKey: { ...identifier, description: "column holding the object's key" },
        key: { ...identifier, description: "unique key column (default: the primary key)" },
        timeZone: {
          type: "string",
          minLength: 1,
          maxLength: 64,
          default: "UTC",
          description: "IANA zone of a timestamp-without-time-zone or date clock (default UTC)",
        },
      },
      required: ["table", "column", "flag", "objectKey"],
      additionalProperties: false,
    },
  },
  required: ["bucket"],
  additionalProperties: false,
});

/** Payload of `<id>.prefix`. */
export interface PrefixPayload {
  prefix: string;
  /** Take `prefix` as written even without a trailing `/` (then `teams/42` also matches `teams/420/`). */
  exact?: boolean;
}

/** Payload of `<id>.object`. */
export interface ObjectPayload {
  key: string;
}

/** Payload of `<id>.upload`. */
export interface UploadPayload {
  id: string | number;
}

export const prefixPayloadSchema: TypedSchema<PrefixPayload> = defineSchema({
  type: "object",
  properties: {
    prefix: { type: "string", minLength: 1, maxLength: 1024 },
    exact: { type: "boolean" },
  },
  required: ["prefix"],
  additionalProperties: false,
});

export const objectPayloadSchema: TypedSchema<ObjectPayload> = defineSchema({
  type: "object",
  properties: { key: { type: "string", minLength: 1, maxLength: 1024 } },
  required: ["key"],
  additionalProperties: false,
});

export const uploadPayloadSchema: TypedSchema<UploadPayload> = defineSchema({
  type: "object",
  properties: { id: { anyOf: [{ type: "string", minLength: 1, maxLength: 1024 }, { type: "integer" }] } },
  required: ["id"],
  additionalProperties: false,
});

const patterns = new Map<string, RegExp>();

function allowed(options: Pick<BlobOptions, "allowPrefix">): RegExp | null {
  if (options.allowPrefix === undefined) return null;
  let pattern = patterns.get(options.allowPrefix);
  if (!pattern) {
    pattern = new RegExp(options.allowPrefix, "u");
    patterns.set(options.allowPrefix, pattern);
  }
  return pattern;
}

/** Why a prefix payload is refused, or null. */
export function prefixProblem(payload: PrefixPayload, options: Pick<BlobOptions, "allowPrefix"> = {}): string | null {
  if (payload.prefix === "") return "prefix must not be empty (an empty prefix is the whole bucket)";
  if (!payload.prefix.endsWith("/") && payload.exact !== true) {
    return (
      `prefix "${payload.prefix}" does not end in "/": it would also delete siblings such as "${payload.prefix}0/…"; ` +
      `write "${payload.prefix}/" to delete that folder, or add "exact": true to delete every key starting with "${payload.prefix}"`
    );
  }
  const pattern = allowed(options);
  if (pattern && !pattern.test(payload.prefix)) {
    return `prefix ${JSON.stringify(payload.prefix)} does not match this entry's allowPrefix /${options.allowPrefix}/: nothing deleted`;
  }
  return null;
}

/** Why an object payload is refused (its key lies under no prefix `allowPrefix` allows), or null. */
export function objectProblem(payload: ObjectPayload, options: Pick<BlobOptions, "allowPrefix">): string | null {
  const pattern = allowed(options);
  if (!pattern) return null;
  const key = payload.key;
  for (let i = key.indexOf("/"); i !== -1; i = key.indexOf("/", i + 1)) {
    if (pattern.test(key.slice(0, i + 1))) return null;
  }
  if (pattern.test(key)) return null;
  return `key ${JSON.stringify(key)} lies under no prefix this entry's allowPrefix /${options.allowPrefix}/ allows: nothing deleted`;
}
