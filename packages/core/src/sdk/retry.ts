/**
 * Retrying a call to an external system (an HTTP API, an object store) with
 * exponential backoff and full jitter. Bounded (a number of attempts),
 * abortable (no attempt and no wait after the signal aborts) and never
 * retrying a permanent failure, so the bin's own, slower retry takes over
 * once this one gives up.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { isPermanent } from "./permanent.js";

export interface RetryOptions {
  /** Attempts in all (1 = no retry). @defaultValue 5 */
  attempts?: number;
  /** The first backoff's ceiling; it doubles on every attempt. @defaultValue 100 */
  baseMs?: number;
  /** The longest single backoff. @defaultValue 5000 */
  maxMs?: number;
  /** Stops retrying: after it aborts no attempt starts and a pending wait rejects with its reason. */
  signal?: AbortSignal;
  /**
   * Whether `error` is worth another attempt (default: every error). A
   * permanent failure (`permanent()`, `PAYLOAD`, `CONFIG`) is never retried,
   * whatever this says.
   */
  retryable?: (error: unknown, attempt: number) => boolean;
  /**
   * The wait before the next attempt, given the jittered backoff: e.g. honour
   * a `Retry-After` header with `Math.max(backoffMs, retryAfter)`.
   */
  delayMs?: (error: unknown, attempt: number, backoffMs: number) => number;
  /** Called before each wait (for a log line). */
  onRetry?: (info: { error: unknown; attempt: number; delayMs: number }) => void;
  /** The source of jitter in [0, 1). @defaultValue Math.random */
  random?: () => number;
}

/**
 * Backoff before attempt `attempt + 1`, full jitter: uniform in
 * [0, min(maxMs, baseMs·2^(attempt−1))].
 */
export function backoffMs(attempt: number, options: Pick<RetryOptions, "baseMs" | "maxMs" | "random"> = {}): number {
  const { baseMs = 100, maxMs = 5_000, random = Math.random } = options;
  return Math.round(random() * Math.min(maxMs, baseMs * 2 ** (attempt - 1)));
}

/**
 * Call `fn` until it resolves, at most `attempts` times. The last attempt's
 * error, a permanent one, one `retryable` refuses or one thrown after the
 * signal aborted is rethrown as is.
 *
 * @example
 * const body = await retry((attempt, signal) => fetch(url, { signal }).then(check), {
 *   attempts: 4,
 *   signal: ctx.signal,
 *   retryable: (error) => !(error instanceof HttpError && error.status < 500),
 * });
 */
export async function retry<T>(
  fn: (attempt: number, signal: AbortSignal | undefined) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 5);
  const { signal } = options;
  for (let attempt = 1; ; attempt += 1) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt, signal);
    } catch (error) {
      if (signal?.aborted || attempt >= attempts || isPermanent(error)) throw error;
      if (options.retryable && !options.retryable(error, attempt)) throw error;
      const jittered = backoffMs(attempt, options);
      const delay = Math.max(0, options.delayMs ? options.delayMs(error, attempt, jittered) : jittered);
      options.onRetry?.({ error, attempt, delayMs: delay });
      if (delay > 0) {
        // timers/promises rejects with a generic AbortError; the caller's reason says why it stopped.
        await sleep(delay, undefined, signal ? { signal } : undefined).catch((cause: unknown) => {
          throw signal?.aborted ? signal.reason : cause;
        });
      }
    }
  }
}
