/**
 * The S3 side of an entry: one client per entry (built in `prepare`), every
 * request retried on transient failures with exponential backoff and full
 * jitter, and the bucket's versioning state. The SDK's own retries are off
 * (`maxAttempts: 1`) so that one policy — bounded, abortable, observable —
 * governs every request, including the per-key errors inside DeleteObjects.
 */
import { Agent as HttpAgent, STATUS_CODES } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { GetBucketVersioningCommand, HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { backoffMs as coreBackoffMs, parseDuration, PurgerError, redactUrl, retry, type Logger } from "@purger/core";
import type { BlobOptions } from "./options.js";

export interface RetryPolicy {
  /** Attempts per request (1 = no retry). */
  attempts: number;
  /** First backoff; doubles on every attempt, with full jitter. */
  baseMs: number;
  /** Longest single backoff. */
  capMs: number;
}

/** ~8 attempts over ≈ 15 s at most: long enough to ride out a SlowDown burst, short enough that the bin's own retry takes over after. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseMs: 100, capMs: 5_000 };

/** Fewer attempts for the probes of `prepare` and `purger doctor` (HeadBucket, GetBucketVersioning): an unreachable endpoint is reported soon. */
export const PROBE_RETRY: RetryPolicy = { attempts: 3, baseMs: 200, capMs: 2_000 };

/** The `requestTimeout` option in milliseconds: the longest one S3 request may go unanswered. */
export function requestTimeoutMs(options: Pick<BlobOptions, "requestTimeout">): number {
  return parseDuration(options.requestTimeout ?? "30s");
}

/**
 * A request that got no answer within the request timeout. The SDK's own
 * `requestTimeout` only logs a warning, so each request is aborted through
 * its `abortSignal`; this is what the abort becomes. Retryable.
 */
export class RequestTimeoutError extends Error {
  override readonly name = "TimeoutError";
  constructor(
    readonly what: string,
    readonly where: string | undefined,
    readonly timeoutMs: number,
    cause: unknown,
  ) {
    super(`${what}: no answer${where ? ` from ${where}` : ""} within ${timeoutMs} ms`, { cause });
  }
}

/** Error codes S3 (and S3-compatible servers) use for "try again later". */
const RETRYABLE_CODES = new Set([
  "SlowDown",
  "InternalError",
  "ServiceUnavailable",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "OperationAborted",
  "TimeoutError",
]);
const RETRYABLE_NETWORK = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ECONNABORTED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

interface S3ErrorShape {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $fault?: "client" | "server";
  $metadata?: { httpStatusCode?: number };
}

/** The HTTP status of an SDK error, if it got an answer. */
export function statusOf(error: unknown): number | undefined {
  return (error as S3ErrorShape | null)?.$metadata?.httpStatusCode;
}

/** The S3 error code (`SlowDown`, `NoSuchBucket` …) or the network error code. */
export function codeOf(error: unknown): string {
  const e = (error ?? {}) as S3ErrorShape;
  const name = e.name && !GENERIC_NAMES.has(e.name) ? e.name : undefined;
  // Answers without a body (HEAD) carry no S3 code: name the HTTP status instead (Forbidden, Not Found …).
  const status = statusOf(error);
  return e.Code ?? name ?? e.code ?? (status !== undefined ? (STATUS_CODES[status] ?? "Error") : "Error");
}

const GENERIC_NAMES = new Set(["Error", "UnknownError", "Unknown"]);

/** 5xx, 429, SlowDown and friends, timeouts and dropped connections: worth another try. */
export function isRetryable(error: unknown): boolean {
  if (error === null || typeof error !== "object") return false;
  const e = error as S3ErrorShape & { cause?: unknown };
  if (e.name === "AbortError") return false;
  const status = statusOf(error);
  // 501 Not Implemented and 505 are answers, not accidents: asking again changes nothing.
  if (status !== undefined && ((status >= 500 && status !== 501 && status !== 505) || status === 429 || status === 408)) return true;
  if (RETRYABLE_CODES.has(codeOf(error)) || (e.Code !== undefined && RETRYABLE_CODES.has(e.Code))) return true;
  if (e.code !== undefined && RETRYABLE_NETWORK.has(e.code)) return true;
  if (e.cause !== undefined && e.cause !== error && isRetryable(e.cause)) return true;
  // No HTTP answer at all (socket closed mid-response, unparseable body from a proxy): a transport failure.
  if (status === undefined && /socket hang up|ECONNRESET|network|Deserialization error/i.test(e.message ?? "")) return true;
  return false;
}

/** `SlowDown (503): Please reduce your request rate.` */
export function describeError(error: unknown): string {
  const status = statusOf(error);
  const message = (error as S3ErrorShape | null)?.message;
  const code = codeOf(error);
  const text = message && message !== code && !GENERIC_NAMES.has(message) ? `: ${message}` : "";
  return `${code}${status ? ` (${status})` : ""}${text}`;
}

/** Backoff before attempt `attempt + 1` (full jitter: uniform in [0, min(cap, base·2^(attempt−1))]); core's `backoffMs` with this policy. */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return coreBackoffMs(attempt, { baseMs: policy.baseMs, maxMs: policy.capMs, random });
}

/** Wait, unless the signal aborts first (then reject with its reason). */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  await sleep(ms, undefined, signal ? { signal } : undefined);
}

export interface RetryOptions {
  signal?: AbortSignal;
  policy?: RetryPolicy;
  log?: Logger;
  /** What is being done, for log lines and the final error. */
  what: string;
  /** Abort an attempt that got no answer after this long (then retry it). @defaultValue 30 s */
  timeoutMs?: number;
  /** The endpoint, for the timeout's message. */
  where?: string;
}

/**
 * Run `fn` until it succeeds, retrying transient failures with backoff. Each
 * attempt gets a signal to pass to `send` as `abortSignal`: it aborts on the
 * caller's signal and after `timeoutMs`. A permanent error, or the last
 * attempt's error, is thrown as is (so the bin's own retry with its longer
 * backoff takes over).
 */
export async function withRetry<T>(options: RetryOptions, fn: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const attempt = async (): Promise<T> => {
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(), timeoutMs);
    try {
      return await fn(options.signal ? AbortSignal.any([options.signal, timer.signal]) : timer.signal);
    } catch (caught) {
      throw timer.signal.aborted && !options.signal?.aborted
        ? new RequestTimeoutError(options.what, options.where, timeoutMs, caught)
        : caught;
    } finally {
      clearTimeout(timeout);
    }
  };
  return retry(attempt, {
    attempts: policy.attempts,
    baseMs: policy.baseMs,
    maxMs: policy.capMs,
    ...(options.signal ? { signal: options.signal } : {}),
    retryable: (error) => isRetryable(error),
    onRetry: ({ error, attempt: n, delayMs }) =>
      options.log?.debug(
        { event: "s3:retry", what: options.what, attempt: n, retryInMs: delayMs, error: describeError(error) },
        "S3 request failed; retrying",
      ),
  });
}

/** The S3 client of an entry: path style, region and endpoint from the options; credentials from the SDK's default chain. */
export function createClient(options: BlobOptions): S3Client {
  const sockets = options.concurrency + 4;
  return new S3Client({
    region: options.region,
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle,
    // Retries are ours (withRetry), so that per-key DeleteObjects errors and request errors share one bounded policy.
    maxAttempts: 1,
    // Checksums only where the API demands them: s3rver and several S3-compatible servers reject the newer defaults.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      connectionTimeout: Math.min(10_000, requestTimeoutMs(options)),
      requestTimeout: requestTimeoutMs(options),
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: sockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: sockets }),
    },
  });
}

/** Where the bucket lives, for messages: `s3://bucket` (at endpoint). */
export function bucketUrl(options: Pick<BlobOptions, "bucket" | "endpoint">): string {
  return `s3://${options.bucket}${options.endpoint ? ` at ${redactUrl(options.endpoint)}` : ""}`;
}

/** Check that the bucket exists and the credentials may use it. Throws TARGET for a missing bucket, CONFIG for rejected credentials. */
export async function assertBucket(client: S3Client, options: BlobOptions, signal?: AbortSignal): Promise<void> {
  try {
    await withRetry({ ...probe(options, signal), what: "HeadBucket" }, (abortSignal) =>
      client.send(new HeadBucketCommand({ Bucket: options.bucket }), { abortSignal }),
    );
  } catch (error) {
    throw bucketError(error, options);
  }
}

function probe(options: BlobOptions, signal: AbortSignal | undefined): Omit<RetryOptions, "what"> {
  return {
    policy: PROBE_RETRY,
    timeoutMs: requestTimeoutMs(options),
    where: options.endpoint !== undefined ? redactUrl(options.endpoint) : `AWS ${options.region}`,
    ...(signal ? { signal } : {}),
  };
}

/** Turn a HeadBucket failure into the error a user can act on. */
export function bucketError(error: unknown, options: BlobOptions): unknown {
  const status = statusOf(error);
  const where = bucketUrl(options);
  if (error instanceof RequestTimeoutError) {
    return new PurgerError(
      "TARGET",
      `bucket ${where}: no answer from the endpoint within ${error.timeoutMs} ms (${error.what}, ${PROBE_RETRY.attempts} attempts)`,
      {
        hint: "check `endpoint` (host, port, http or https) and that the server is up; raise `requestTimeout` for a slow server",
        cause: error,
      },
    );
  }
  if (status === 404 || codeOf(error) === "NoSuchBucket") {
    return new PurgerError("TARGET", `bucket ${where} does not exist`, {
      hint: "check `bucket`, `endpoint` and `region` in the entry's options",
      cause: error,
    });
  }
  if (status === 403 || status === 401) {
    return new PurgerError("CONFIG", `bucket ${where}: access denied (${describeError(error)})`, {
      hint: "credentials come from the AWS SDK's default chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE …; they need s3:ListBucket and s3:DeleteObject (s3:DeleteObjectVersion in a versioned bucket)",
      cause: error,
    });
  }
  if (codeOf(error) === "CredentialsProviderError") {
    return new PurgerError("CONFIG", `no AWS credentials found for ${where}`, {
      hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment; credentials never go in purger.yaml",
      cause: error,
    });
  }
  // A HEAD answer has no body: the SDK's own message is just "UnknownError"; name the status and the bucket instead.
  if (error instanceof Error && !(error instanceof PurgerError))
    return new Error(`bucket ${where}: ${describeError(error)}`, { cause: error });
  return error;
}

export interface Versioning {
  /** Whether every version and delete marker must be listed and deleted. */
  versioned: boolean;
  /** How it was decided, for `purger doctor` and logs. */
  reason: string;
}

/**
 * Decide whether the bucket is versioned. `auto` asks GetBucketVersioning:
 * Enabled or Suspended (old versions remain) is versioned; a server that does
 * not implement the call counts as unversioned. A transient failure or a
 * refusal is an error: guessing "unversioned" would leave versions behind.
 */
export async function resolveVersioning(client: S3Client, options: BlobOptions, signal?: AbortSignal): Promise<Versioning> {
  if (options.versions !== "auto") {
    return { versioned: options.versions, reason: `versions: ${String(options.versions)} in the options` };
  }
  try {
    const answer = await withRetry({ ...probe(options, signal), what: "GetBucketVersioning" }, (abortSignal) =>
      client.send(new GetBucketVersioningCommand({ Bucket: options.bucket }), { abortSignal }),
    );
    const status = answer.Status;
    if (status === "Enabled" || status === "Suspended") return { versioned: true, reason: `the bucket says versioning is ${status}` };
    return { versioned: false, reason: "the bucket says versioning was never enabled" };
  } catch (error) {
    const status = statusOf(error);
    const code = codeOf(error);
    if (status === 501 || status === 405 || status === 400 || code === "NotImplemented" || code === "MethodNotAllowed") {
      return { versioned: false, reason: `the server cannot answer GetBucketVersioning (${describeError(error)}): counted as unversioned` };
    }
    if (status === 403) {
      throw new PurgerError(
        "CONFIG",
        `${bucketUrl(options)}: not allowed to read the bucket's versioning state (${describeError(error)})`,
        {
          hint: "grant s3:GetBucketVersioning, or set `versions: true` (or `false`) in the entry's options",
          cause: error,
        },
      );
    }
    throw bucketError(error, options);
  }
}
