/**
 * `@purger/plugin-blob`: one entry = one bucket of one S3-compatible endpoint.
 * Bin handlers delete a prefix (every object, or every version and delete
 * marker in a versioned bucket), one object, or cancel one pending upload;
 * with `uploads` set, the scheduled sweep removes stale pending uploads
 * (row + object).
 */
import { definePlugin, isPurgerError, PurgerError, type Diagnostic, type Json } from "@purger/core";
import { resolveUploadsTable } from "./catalog.js";
import { deleteObject, deletePrefix, type PrefixProgress } from "./delete.js";
import {
  objectPayloadSchema,
  objectProblem,
  optionsSchema,
  prefixPayloadSchema,
  prefixProblem,
  uploadPayloadSchema,
  type BlobOptions,
} from "./options.js";
import { assertBucket, bucketError, bucketUrl, createClient, describeError, requestTimeoutMs, resolveVersioning } from "./s3.js";
import type { BlobState } from "./state.js";
import { cancelUpload, countStale, objectKeyInUse, sweepBatch, uploadsStatements } from "./uploads.js";

export type { BlobOptions, UploadsOptions, PrefixPayload, ObjectPayload, UploadPayload } from "./options.js";
export type { BlobState } from "./state.js";
export { optionsSchema } from "./options.js";

export default definePlugin({
  name: "@purger/plugin-blob",
  version: "0.1.0",
  options: optionsSchema,
  usesRetention: (options) => options.uploads !== undefined,

  async prepare(ctx): Promise<BlobState> {
    const client = createClient(ctx.options);
    try {
      await assertBucket(client, ctx.options, ctx.signal);
      const versioning = await resolveVersioning(client, ctx.options, ctx.signal);
      ctx.log.debug({ bucket: ctx.options.bucket, versioned: versioning.versioned, reason: versioning.reason }, "bucket versioning");
      let uploads: BlobState["uploads"] = null;
      if (ctx.options.uploads) {
        const table = await resolveUploadsTable(ctx.pool, ctx.options.uploads, ctx.entry.id);
        uploads = { table, sql: uploadsStatements(table, ctx.options.uploads.timeZone) };
      }
      return { client, versioning, uploads };
    } catch (error) {
      client.destroy();
      throw error;
    }
  },

  async release(state) {
    state.client.destroy();
  },

  async batch(ctx) {
    if (!ctx.state.uploads) return { processed: 0, cursor: null, done: true };
    return sweepBatch(ctx, ctx.state.uploads);
  },

  async estimate(ctx) {
    return ctx.state.uploads ? countStale(ctx, ctx.state.uploads.sql, null) : null;
  },

  async count(ctx, limit) {
    return ctx.state.uploads ? countStale(ctx, ctx.state.uploads.sql, limit) : 0;
  },

  async countAll(ctx) {
    if (!ctx.state.uploads) return 0;
    const { rows } = await ctx.pool.query<{ n: number }>(ctx.state.uploads.sql.countAll);
    return Number(rows[0]!.n);
  },

  async check(ctx) {
    const diagnostics: Diagnostic[] = [];
    const where = bucketUrl(ctx.options);
    try {
      const credentials = await ctx.state.client.config.credentials();
      const id = credentials.accessKeyId;
      diagnostics.push({ level: "ok", message: `credentials found (access key …${id.slice(-4)})` });
    } catch (error) {
      diagnostics.push({
        level: "error",
        message: `no AWS credentials: ${describeError(error)}`,
        hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment; credentials never go in purger.yaml",
      });
    }
    try {
      await assertBucket(ctx.state.client, ctx.options, ctx.signal);
      diagnostics.push({ level: "ok", message: `bucket ${where} reachable, credentials accepted` });
    } catch (error) {
      const e = bucketError(error, ctx.options);
      diagnostics.push({
        level: "error",
        message: e instanceof Error ? e.message : String(e),
        ...(isPurgerError(e) && e.hint ? { hint: e.hint } : {}),
      });
    }
    const versioning = ctx.state.versioning;
    diagnostics.push({
      level: "ok",
      message: `${where} is ${versioning.versioned ? "versioned: prefixes are deleted with every version and delete marker" : "unversioned"} (${versioning.reason})`,
    });
    const uploads = ctx.state.uploads;
    if (uploads) {
      const t = uploads.table;
      if (t.clockIndex) {
        diagnostics.push({ level: "ok", message: `${t.display}.${t.column.name} is indexed (${t.clockIndex})` });
      } else {
        diagnostics.push({
          level: "warn",
          message: `${t.display}.${t.column.name} has no index: every uploads sweep scans the whole table`,
          hint: `CREATE INDEX CONCURRENTLY ON ${t.sql} (${t.column.sql}) WHERE ${t.flag.sql} = false;`,
        });
      }
      if (t.objectKeyIndex) {
        diagnostics.push({ level: "ok", message: `${t.display}.${t.objectKey.name} is indexed (${t.objectKeyIndex})` });
      } else {
        diagnostics.push({
          level: "warn",
          message: `${t.display}.${t.objectKey.name} has no index: each sweep batch and each object delete scans the whole table for other rows using the key`,
          hint: `CREATE INDEX CONCURRENTLY ON ${t.sql} (${t.objectKey.sql});`,
        });
      }
    }
    return diagnostics;
  },

  describe(options) {
    return `s3://${options.bucket}${options.uploads ? ` + uploads ${options.uploads.table}` : ""}`;
  },

  bin: {
    prefix: {
      schema: prefixPayloadSchema,
      validate: (payload, options) => prefixProblem(payload, options),
      async handle(ctx, payload) {
        // Again here: an item enqueued from SQL was never validated.
        const problem = prefixProblem(payload, ctx.options);
        if (problem) throw new PurgerError("PAYLOAD", problem);
        const from = readProgress(ctx.item.checkpoint);
        const result = await deletePrefix({
          client: ctx.state.client,
          ...requestOf(ctx.options),
          bucket: ctx.options.bucket,
          versioned: ctx.state.versioning.versioned,
          signal: ctx.signal,
          log: ctx.log,
          prefix: payload.prefix,
          concurrency: ctx.options.concurrency,
          from,
          onProgress: (deleted) => ctx.progress(deleted),
          saveCheckpoint: (progress) => ctx.saveCheckpoint(progressJson(progress), progress.deleted),
        });
        ctx.log.info(
          {
            event: "blob:prefix",
            prefix: payload.prefix,
            deleted: result.deleted,
            complete: result.complete,
            versioned: ctx.state.versioning.versioned,
          },
          result.complete ? "prefix deleted" : "prefix deletion paused; continues from its checkpoint",
        );
        return { processed: result.deleted, done: result.complete };
      },
    },
    object: {
      schema: objectPayloadSchema,
      validate: (payload, options) => objectProblem(payload, options),
      async handle(ctx, payload) {
        const problem = objectProblem(payload, ctx.options);
        if (problem) throw new PurgerError("PAYLOAD", problem);
        // The uploads sweep enqueues an object once its row is gone; a row using the key since (re-created, or another upload) keeps it.
        if (ctx.state.uploads && (await objectKeyInUse(ctx.pool, ctx.state.uploads, payload.key))) {
          ctx.log.info(
            { event: "blob:object", key: payload.key, outcome: "in-use", deleted: 0 },
            "object kept: a row of the uploads table uses it",
          );
          return { processed: 0 };
        }
        const result = await deleteObject(
          {
            ...requestOf(ctx.options),
            client: ctx.state.client,
            bucket: ctx.options.bucket,
            versioned: ctx.state.versioning.versioned,
            signal: ctx.signal,
            log: ctx.log,
          },
          payload.key,
        );
        ctx.log.info(
          { event: "blob:object", key: payload.key, outcome: result.outcome, deleted: result.deleted },
          `object ${result.outcome}`,
        );
        return { processed: result.deleted };
      },
    },
    upload: {
      schema: uploadPayloadSchema,
      validate: (_payload, options) =>
        options.uploads ? null : "this entry has no `uploads` option: there is no uploads table to cancel an upload in",
      async handle(ctx, payload) {
        if (!ctx.state.uploads) throw new PurgerError("PAYLOAD", "this entry has no `uploads` option");
        return cancelUpload(ctx, payload, ctx.state.uploads);
      },
    },
  },
});

/** Every S3 request of a handler is aborted after `requestTimeout` (and retried); the item's signal stops it at the entry's `timeout`. */
function requestOf(options: BlobOptions): { timeoutMs: number; where: string } {
  return { timeoutMs: requestTimeoutMs(options), where: options.endpoint ?? `AWS ${options.region}` };
}

function readProgress(checkpoint: Json | null): PrefixProgress {
  if (checkpoint === null || typeof checkpoint !== "object" || Array.isArray(checkpoint)) return { startAfter: null, deleted: 0 };
  const startAfter = typeof checkpoint["startAfter"] === "string" ? checkpoint["startAfter"] : null;
  const deleted = typeof checkpoint["deleted"] === "number" ? checkpoint["deleted"] : 0;
  return { startAfter, deleted };
}

function progressJson(progress: PrefixProgress): Json {
  return { startAfter: progress.startAfter, deleted: progress.deleted };
}
