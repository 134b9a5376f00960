/**
 * Deleting objects at scale: a prefix is listed page by page (ListObjectsV2,
 * or ListObjectVersions in a versioned bucket) while earlier pages are being
 * deleted with DeleteObjects (≤ 1 000 keys each, `concurrency` requests in
 * flight). Listing is inherently sequential; it runs up to `concurrency`
 * pages ahead of the deletes, so memory stays at `2 × concurrency + 1` pages
 * whatever the prefix holds.
 *
 * Pagination uses `StartAfter` = the last key seen (`KeyMarker` for
 * versions): it works on every S3-compatible server, and deletions behind the
 * cursor cannot disturb it. The checkpoint is a key below which everything is
 * gone (a watermark over pages that completed in order), so a later attempt
 * continues from there; a last listing pass from the start of the prefix
 * then catches what was written behind the cursor meanwhile.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { Logger } from "@purger/core";
import pLimit from "p-limit";
import {
  backoffMs,
  DEFAULT_RETRY,
  describeError,
  pause,
  RequestTimeoutError,
  statusOf,
  withRetry,
  type RetryOptions,
  type RetryPolicy,
} from "./s3.js";

/** DeleteObjects takes at most this many keys. */
export const DELETE_BATCH = 1000;

export interface ObjectId {
  Key: string;
  VersionId?: string;
}

export interface Bucket {
  client: S3Client;
  bucket: string;
  versioned: boolean;
  signal: AbortSignal;
  log: Logger;
  policy?: RetryPolicy;
  /** The longest one request may go unanswered (then it is aborted and retried). */
  timeoutMs?: number;
  /** The endpoint, for messages. */
  where?: string;
}

/** What `withRetry` needs of a bucket (signal, policy, timeout). */
function retryOf(bucket: Bucket, what: string, signal: AbortSignal = bucket.signal): RetryOptions {
  return {
    what,
    signal,
    log: bucket.log,
    ...(bucket.policy ? { policy: bucket.policy } : {}),
    ...(bucket.timeoutMs !== undefined ? { timeoutMs: bucket.timeoutMs } : {}),
    ...(bucket.where !== undefined ? { where: bucket.where } : {}),
  };
}

const UNSTOPPABLE = new AbortController().signal;

/** Per-key answers of DeleteObjects that mean "already gone". */
const GONE = new Set(["NoSuchKey", "NoSuchVersion"]);

/**
 * Delete these objects (≤ 1 000) with DeleteObjects, retrying the request on
 * transient failures and then the keys the answer reports as failed, with
 * backoff. Returns how many were deleted; throws when keys still fail after
 * the last attempt (naming a few of them).
 */
export async function deleteBatch(bucket: Bucket, objects: ObjectId[]): Promise<number> {
  const policy = bucket.policy ?? DEFAULT_RETRY;
  let remaining = objects;
  let failures: { key: string; code: string; message: string }[] = [];
  for (let attempt = 1; attempt <= policy.attempts; attempt += 1) {
    const answer = await withRetry({ ...retryOf(bucket, "DeleteObjects"), policy }, (abortSignal) =>
      bucket.client.send(
        new DeleteObjectsCommand({
          Bucket: bucket.bucket,
          // Quiet: the answer lists only the failures, not 1 000 successes.
          Delete: {
            Objects: remaining.map((o) => (o.VersionId === undefined ? { Key: o.Key } : { Key: o.Key, VersionId: o.VersionId })),
            Quiet: true,
          },
        }),
        { abortSignal },
      ),
    );
    const failed = new Map<string, { code: string; message: string }>();
    for (const error of answer.Errors ?? []) {
      if (error.Key === undefined || GONE.has(error.Code ?? "")) continue;
      failed.set(idOf({ Key: error.Key, ...(error.VersionId ? { VersionId: error.VersionId } : {}) }), {
        code: error.Code ?? "Error",
        message: error.Message ?? "",
      });
    }
    if (failed.size === 0) return objects.length;
    const next = remaining.filter((o) => failed.has(idOf(o)) || (o.VersionId !== undefined && failed.has(idOf({ Key: o.Key }))));
    failures = next.map((o) => ({
      key: o.Key,
      ...(failed.get(idOf(o)) ?? failed.get(idOf({ Key: o.Key })) ?? { code: "Error", message: "" }),
    }));
    // A server that names keys we did not send must not make us loop: retry only what we sent.
    if (next.length === 0) return objects.length;
    remaining = next;
    if (attempt < policy.attempts) {
      const delay = backoffMs(policy, attempt);
      bucket.log.debug(
        { event: "s3:retry", what: "DeleteObjects keys", attempt, keys: remaining.length, retryInMs: delay, error: failures[0]?.code },
        "DeleteObjects reported per-key errors; retrying them",
      );
      await pause(delay, bucket.signal);
    }
  }
  const sample = failures.slice(0, 3).map((f) => `${f.key} (${f.code}${f.message ? `: ${f.message}` : ""})`);
  throw new Error(
    `DeleteObjects: ${failures.length} of ${objects.length} keys still failing after ${policy.attempts} attempts: ${sample.join(", ")}${failures.length > 3 ? ", …" : ""}`,
  );
}

function idOf(o: ObjectId): string {
  return o.VersionId === undefined ? o.Key : `${o.Key}\u0000${o.VersionId}`;
}

/** One page of a listing, ready to delete. */
interface Page {
  /** What to delete for this page (in a versioned bucket: the versions). */
  objects: ObjectId[];
  /** Delete markers, deleted once `objects` are: only of keys whose every version is in this page or an earlier one. */
  markers: ObjectId[];
  /** How many of `objects` and `markers` count as deleted (a key seen again by a later pass was counted already). */
  counted: number;
  /** Once `objects` (and every earlier page) is deleted, nothing at or below this key remains; null: no progress to record. */
  safeKey: string | null;
  /** Where the next listing starts; null at the end. */
  next: { key: string; versionId?: string } | null;
}

export interface PrefixProgress {
  /** Objects (or versions and delete markers) deleted so far, over every attempt. */
  deleted: number;
  /** Everything under the prefix up to this key is gone; null: start of the prefix. */
  startAfter: string | null;
}

export interface DeletePrefixOptions extends Bucket {
  prefix: string;
  concurrency: number;
  /** Where an earlier attempt stopped. */
  from: PrefixProgress;
  /** Called after each deleted page. */
  onProgress?(deleted: number): void;
  /** Persist the progress (called every few pages and when stopping early). */
  saveCheckpoint(progress: PrefixProgress): Promise<void>;
  /** Save at most this often (ms) … */
  checkpointEveryMs?: number;
  /** … or after this many pages, whichever comes first. */
  checkpointEveryPages?: number;
}

export interface DeletePrefixResult extends PrefixProgress {
  /** False when the signal stopped the work early; continue later from `startAfter`. */
  complete: boolean;
}

/** Passes from the start of the prefix, after which keys still listed are reported instead of deleted again. */
const PASSES_FROM_START = 3;

/**
 * Delete every object (and, versioned, every version and delete marker) whose
 * key starts with `prefix`. Resumes from `from.startAfter`, then passes from
 * the start of the prefix until one finds nothing: only then is the prefix
 * complete. Keys still listed after a few passes (a server that reports them
 * deleted and keeps them) are a thrown error naming them, never `complete`.
 * A key found again by a later pass is not counted twice. Stops early, with
 * `complete: false` and the checkpoint saved, when the signal aborts; throws
 * (checkpoint saved) when a request keeps failing.
 */
export async function deletePrefix(options: DeletePrefixOptions): Promise<DeletePrefixResult> {
  let deleted = options.from.deleted;
  let startAfter = options.from.startAfter;
  // Keys of a later pass older than this were listed (and counted) by an earlier one; newer ones were written meanwhile.
  const started = new Date();
  let start = options.from.startAfter;
  let countSince: Date | null = null;
  let fromStart = 0;
  for (;;) {
    const pass = await runPass(options, start, deleted, countSince);
    deleted = pass.deleted;
    startAfter = pass.startAfter;
    if (!pass.complete) return { deleted, startAfter, complete: false };
    if (start === null) {
      // A pass from the start that found nothing: the prefix is empty.
      if (pass.listed === 0) break;
      fromStart += 1;
      if (fromStart >= PASSES_FROM_START) {
        const left = await stillListed(options, started);
        if (left === null) break;
        // Keys still there were counted when the server reported them deleted: they are not.
        deleted = Math.max(options.from.deleted, deleted - left.counted);
        // The next attempt starts from the beginning of the prefix.
        await options.saveCheckpoint({ deleted, startAfter: null });
        throw new Error(left.message);
      }
    }
    start = null;
    countSince = started;
  }
  return { deleted, startAfter, complete: true };
}

/** List the prefix once more without deleting: null when empty, otherwise how many of those keys were counted, and a message naming them. */
async function stillListed(options: DeletePrefixOptions, started: Date): Promise<{ counted: number; message: string } | null> {
  const pages = options.versioned ? listVersions(options, null, started) : listObjects(options, null, started);
  const { value: page } = await pages.next();
  void pages.return(undefined);
  const left = page ? [...page.objects, ...page.markers] : [];
  if (!page || left.length === 0) return null;
  const sample = [...new Set(left.map((o) => o.Key))].slice(0, 3);
  return {
    // `counted` of a page listed "since started" is what is new; the rest was there, and counted, before.
    counted: left.length - page.counted,
    message:
      `prefix ${JSON.stringify(options.prefix)}: ${left.length}${page.next ? "+" : ""} ${options.versioned ? "version(s) or delete marker(s)" : "object(s)"} ` +
      `still listed after ${PASSES_FROM_START} passes that deleted them (${sample.join(", ")}${left.length > sample.length ? ", …" : ""}): ` +
      "the server answered that they were deleted",
  };
}

async function runPass(
  options: DeletePrefixOptions,
  start: string | null,
  deletedBefore: number,
  countSince: Date | null,
): Promise<DeletePrefixResult & { listed: number }> {
  const { signal, concurrency } = options;
  const limit = pLimit(concurrency);
  const everyMs = options.checkpointEveryMs ?? 2_000;
  const everyPages = options.checkpointEveryPages ?? 5;
  let deleted = deletedBefore;
  let watermark = start;
  let listed = 0;
  let failure: unknown = null;
  const slots: { safeKey: string | null; settled: boolean }[] = [];
  const inflight = new Set<Promise<void>>();
  let versionsDone: Promise<void> = Promise.resolve();
  const advance = () => {
    while (slots[0]?.settled) {
      const slot = slots.shift()!;
      if (slot.safeKey !== null) watermark = slot.safeKey;
    }
  };
  // Nothing of this pass is saved yet (a forced save always writes: the previous pass's end may not be).
  let saved: { at: number; watermark: string | null | undefined; deleted: number } = {
    at: performance.now(),
    watermark: undefined,
    deleted: -1,
  };
  let pagesSinceSave = 0;
  // Saves run one after the other in the background: a slow database never holds up the listing.
  let saving: Promise<void> = Promise.resolve();
  const save = (force: boolean): Promise<void> => {
    if (!force && pagesSinceSave < everyPages && performance.now() - saved.at < everyMs) return saving;
    if (saved.watermark === watermark && saved.deleted === deleted) return saving;
    saved = { at: performance.now(), watermark, deleted };
    pagesSinceSave = 0;
    const progress = { deleted, startAfter: watermark };
    saving = saving.then(() =>
      options.saveCheckpoint(progress).catch((error: unknown) => {
        options.log.warn(
          { event: "blob:checkpoint:error", error: error instanceof Error ? error.message : String(error) },
          "could not save the prefix checkpoint",
        );
      }),
    );
    return saving;
  };

  const pages = options.versioned ? listVersions(options, start, countSince) : listObjects(options, start, countSince);
  try {
    for (;;) {
      // List ahead of the deletes (the server overlaps both), but at most `concurrency` pages: memory stays bounded.
      while (inflight.size >= 2 * concurrency) await Promise.race(inflight);
      if (signal.aborted || failure !== null) break;
      const { value: page, done } = await pages.next();
      if (done) break;
      const size = page.objects.length + page.markers.length;
      listed += size;
      const slot = { safeKey: page.safeKey, settled: size === 0 };
      slots.push(slot);
      if (size > 0) {
        // A page once started is finished, retries included (bounded), even when the signal fires meanwhile:
        // its objects may already be gone on the server, and only a completed page can be counted and checkpointed.
        const bucket = { ...options, signal: UNSTOPPABLE };
        // Pages run in parallel, but a page's delete markers wait for the versions of every earlier page (a key's
        // versions may sit in the page before): a marker never goes while a version it hides might stay.
        const earlier = versionsDone;
        const versions = limit(() => deleteAll(bucket, page.objects));
        versionsDone = Promise.all([earlier, versions]).then(() => undefined);
        // Its failure is the page's own, reported through `work`.
        versionsDone.catch(() => undefined);
        const work = versions
          .then(() => earlier)
          .then(() => (page.markers.length > 0 ? limit(() => deleteAll(bucket, page.markers)) : 0))
          .then(
            () => {
              deleted += page.counted;
              slot.settled = true;
              pagesSinceSave += 1;
              advance();
              options.onProgress?.(deleted);
            },
            (error: unknown) => {
              failure ??= error;
            },
          );
        inflight.add(work);
        void work.finally(() => inflight.delete(work));
      }
      advance();
      void save(false);
    }
  } catch (error) {
    // A listing that kept failing (or was aborted during its backoff).
    failure ??= error;
  } finally {
    await Promise.all(inflight);
    advance();
    void pages.return(undefined);
  }
  if (signal.aborted) {
    await save(true);
    return { deleted, startAfter: watermark, complete: false, listed };
  }
  if (failure !== null) {
    await save(true);
    throw failure;
  }
  return { deleted, startAfter: watermark, complete: true, listed };
}

async function deleteAll(bucket: Bucket, objects: ObjectId[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < objects.length; i += DELETE_BATCH) deleted += await deleteBatch(bucket, objects.slice(i, i + DELETE_BATCH));
  return deleted;
}

/** How many of these count: all on a first pass; on a later one only what was written since it began. */
function countOf(entries: { at?: Date | undefined }[], countSince: Date | null): number {
  if (countSince === null) return entries.length;
  return entries.filter((e) => e.at === undefined || e.at.getTime() >= countSince.getTime()).length;
}

/** ListObjectsV2 pages, `StartAfter` = the last key of the previous page. */
async function* listObjects(options: DeletePrefixOptions, start: string | null, countSince: Date | null): AsyncGenerator<Page> {
  let startAfter = start;
  for (;;) {
    const answer = await withRetry(retryOf(options, "ListObjectsV2"), (abortSignal) =>
      options.client.send(
        new ListObjectsV2Command({
          Bucket: options.bucket,
          Prefix: options.prefix,
          MaxKeys: DELETE_BATCH,
          ...(startAfter !== null ? { StartAfter: startAfter } : {}),
        }),
        { abortSignal },
      ),
    );
    // Never act outside the prefix, whatever a server answers.
    const found = (answer.Contents ?? []).filter(
      (o): o is typeof o & { Key: string } => o.Key !== undefined && o.Key.startsWith(options.prefix),
    );
    const last = found.at(-1)?.Key ?? null;
    // A server that ignores StartAfter would hand back the same page forever.
    const more = answer.IsTruncated === true && last !== null && last !== startAfter;
    yield {
      objects: found.map((o) => ({ Key: o.Key })),
      markers: [],
      counted: countOf(
        found.map((o) => ({ at: o.LastModified })),
        countSince,
      ),
      safeKey: last,
      next: more ? { key: last } : null,
    };
    if (!more) return;
    startAfter = last;
  }
}

/**
 * ListObjectVersions pages (versions and delete markers). The entry the next
 * listing starts after is held back and deleted with the next page, so the
 * `VersionIdMarker` the server is given always still exists.
 */
async function* listVersions(options: DeletePrefixOptions, start: string | null, countSince: Date | null): AsyncGenerator<Page> {
  let marker: { key: string; versionId?: string } | null = start === null ? null : { key: start };
  let carry: Entry | null = null;
  // Delete markers of the key a page ends on: its other versions may come in the next page.
  let heldMarkers: Entry[] = [];
  for (;;) {
    const answer = await withRetry(retryOf(options, "ListObjectVersions"), (abortSignal) =>
      options.client.send(
        new ListObjectVersionsCommand({
          Bucket: options.bucket,
          Prefix: options.prefix,
          // One entry of each page waits for the next: 999 + 1 fills one DeleteObjects.
          MaxKeys: DELETE_BATCH - 1,
          ...(marker !== null ? { KeyMarker: marker.key } : {}),
          ...(marker?.versionId !== undefined ? { VersionIdMarker: marker.versionId } : {}),
        }),
        { abortSignal },
      ),
    );
    const entries: Entry[] = [];
    let order = 0;
    const listed = [
      ...(answer.Versions ?? []).map((v) => ({ ...v, isMarker: false })),
      ...(answer.DeleteMarkers ?? []).map((v) => ({ ...v, isMarker: true })),
    ];
    for (const v of listed) {
      if (v.Key === undefined || !v.Key.startsWith(options.prefix)) continue;
      entries.push({
        Key: v.Key,
        ...(v.VersionId !== undefined ? { VersionId: v.VersionId } : {}),
        order: order++,
        marker: v.isMarker,
        at: v.LastModified,
      });
    }
    entries.sort((a, b) => compareKeys(a.Key, b.Key) || a.order - b.order);
    const nextKey = answer.IsTruncated ? answer.NextKeyMarker : undefined;
    const next =
      nextKey === undefined ? null : { key: nextKey, ...(answer.NextVersionIdMarker ? { versionId: answer.NextVersionIdMarker } : {}) };
    let objects: Entry[] = carry ? [carry, ...entries] : entries;
    carry = null;
    if (next !== null) {
      const index = objects.findIndex((o) => o.Key === next.key && (next.versionId === undefined || o.VersionId === next.versionId));
      if (index !== -1) {
        carry = objects[index]!;
        objects = objects.filter((_, i) => i !== index);
      }
    }
    // Every key below the held-back entry's key is complete once this page is deleted.
    const below = next === null ? objects : objects.filter((o) => compareKeys(o.Key, next.key) < 0);
    const safeKey = below.at(-1)?.Key ?? null;
    if (next === null && carry) {
      objects.push(carry);
      carry = null;
    }
    const markers = [...heldMarkers, ...objects.filter((o) => o.marker)];
    heldMarkers = next === null ? [] : markers.filter((o) => o.Key === next.key);
    const due = next === null ? markers : markers.filter((o) => o.Key !== next.key);
    const versions = objects.filter((o) => !o.marker);
    const page: Page = {
      objects: versions.map(idOfEntry),
      markers: due.map(idOfEntry),
      counted: countOf(versions, countSince) + countOf(due, countSince),
      safeKey,
      next,
    };
    if (next === null) {
      yield page;
      return;
    }
    if (marker !== null && next.key === marker.key && next.versionId === marker.versionId) {
      throw new Error(`ListObjectVersions did not advance past ${next.key} (${next.versionId ?? "no version id"})`);
    }
    yield page;
    marker = next;
  }
}

interface Entry extends ObjectId {
  order: number;
  marker: boolean;
  at?: Date | undefined;
}

function idOfEntry(e: Entry): ObjectId {
  return e.VersionId === undefined ? { Key: e.Key } : { Key: e.Key, VersionId: e.VersionId };
}

export type ObjectOutcome = "deleted" | "missing";

/**
 * Delete one object: in a versioned bucket every version and delete marker of
 * exactly this key; otherwise the object, after a HEAD that tells whether it
 * was there (a missing object is success, reported as `missing`).
 */
export async function deleteObject(bucket: Bucket, key: string): Promise<{ outcome: ObjectOutcome; deleted: number }> {
  if (bucket.versioned) {
    const found = await listKeyVersions(bucket, key);
    // The versions first: a marker deleted while a version stays would make the object visible again.
    let deleted = await deleteAll(bucket, found.filter((v) => !v.marker).map(idOfEntry));
    deleted += await deleteAll(bucket, found.filter((v) => v.marker).map(idOfEntry));
    return { outcome: deleted > 0 ? "deleted" : "missing", deleted };
  }
  try {
    await withRetry(retryOf(bucket, "HeadObject"), (abortSignal) =>
      bucket.client.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: key }), { abortSignal }),
    );
  } catch (error) {
    if (statusOf(error) === 404) return { outcome: "missing", deleted: 0 };
    if (error instanceof RequestTimeoutError) throw error;
    throw new Error(`HeadObject: ${describeError(error)}`, { cause: error });
  }
  await withRetry(retryOf(bucket, "DeleteObject"), (abortSignal) =>
    bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: key }), { abortSignal }),
  );
  return { outcome: "deleted", deleted: 1 };
}

/** Every version and delete marker of exactly `key` (the listing's prefix also matches longer keys, which come after). */
async function listKeyVersions(bucket: Bucket, key: string): Promise<Entry[]> {
  const found: Entry[] = [];
  let marker: { key: string; versionId?: string } | null = null;
  for (;;) {
    const answer = await withRetry(retryOf(bucket, "ListObjectVersions"), (abortSignal) =>
      bucket.client.send(
        new ListObjectVersionsCommand({
          Bucket: bucket.bucket,
          Prefix: key,
          MaxKeys: DELETE_BATCH,
          ...(marker !== null ? { KeyMarker: marker.key } : {}),
          ...(marker?.versionId !== undefined ? { VersionIdMarker: marker.versionId } : {}),
        }),
        { abortSignal },
      ),
    );
    let past = false;
    const listed = [
      ...(answer.Versions ?? []).map((v) => ({ ...v, isMarker: false })),
      ...(answer.DeleteMarkers ?? []).map((v) => ({ ...v, isMarker: true })),
    ];
    for (const v of listed) {
      if (v.Key === key) {
        found.push({ Key: key, ...(v.VersionId !== undefined ? { VersionId: v.VersionId } : {}), order: found.length, marker: v.isMarker });
      } else if (v.Key !== undefined && compareKeys(v.Key, key) > 0) past = true;
    }
    if (past || !answer.IsTruncated || answer.NextKeyMarker === undefined) return found;
    marker = { key: answer.NextKeyMarker, ...(answer.NextVersionIdMarker ? { versionId: answer.NextVersionIdMarker } : {}) };
  }
}

/** S3 orders keys by their UTF-8 bytes (JavaScript's `<` compares UTF-16 units, which differs past the BMP). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
