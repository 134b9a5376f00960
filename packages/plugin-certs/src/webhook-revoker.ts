/**
 * The `webhook` revoker: `POST { serial, reason }` as JSON to the configured
 * URL with an `Idempotency-Key` header (stable per serial) and, when set,
 * `Authorization: Bearer <token>`. 2xx is success. 408, 429, 5xx, network
 * errors and timeouts are retried here a few times with core's `retry`
 * (exponential backoff, full jitter, `Retry-After` honoured), then thrown
 * as ordinary errors so the bin's retry (or the next sweep) takes over. Any
 * other answer is a refusal no retry fixes: a `PurgerError("PAYLOAD")`, which
 * the bin marks failed at once. The token never appears in a message or a log.
 */
import { isPurgerError, PurgerError, parseDuration, retry, type Diagnostic } from "@purger/core";
import type { WebhookRevokerOptions } from "./options.js";
import type { RevokeRequest, Revoker } from "./revoker.js";

const RETRY_BASE_MS = 250;
const RETRY_AFTER_CAP_MS = 5_000;
const BODY_EXCERPT = 300;

/** One attempt's transient failure: what went wrong, and how long the receiver asked to wait. */
class AttemptFailed extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null,
  ) {
    super(message);
  }
}

export function createWebhookRevoker(options: WebhookRevokerOptions): Revoker {
  const timeoutMs = parseDuration(options.timeout);
  const target = redactUrl(options.url);
  const scrub = (text: string) => (options.token ? text.replaceAll(options.token, "***") : text);

  async function post(request: RevokeRequest): Promise<Response> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "idempotency-key": request.idempotencyKey,
      "user-agent": "purger-plugin-certs",
    };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    return fetch(options.url, {
      method: "POST",
      headers,
      body: JSON.stringify({ serial: request.serial, reason: request.reason }),
      signal: AbortSignal.any([request.signal, AbortSignal.timeout(timeoutMs)]),
    });
  }

  return {
    external: true,
    async revoke(request) {
      const once = async (attempt: number): Promise<void> => {
        let retryAfterMs: number | null = null;
        let problem: string;
        try {
          const response = await post(request);
          const body = scrub(excerpt(await response.text()));
          if (response.ok) return;
          problem = `webhook ${target} answered ${response.status}${response.statusText ? ` ${response.statusText}` : ""}${body ? `: ${body}` : ""}`;
          if (!isRetryable(response.status)) {
            throw new PurgerError("PAYLOAD", `${problem} (serial ${request.serial}; not retried: a ${response.status} is a refusal)`, {
              hint: "fix what the receiver refused, then `purger bin retry` the item",
            });
          }
          retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
        } catch (error) {
          if (isPurgerError(error)) throw error;
          if (request.signal.aborted) throw error;
          const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
          problem = timedOut
            ? `webhook ${target} did not answer within ${options.timeout}`
            : `webhook ${target} unreachable: ${scrub(causeMessage(error))}`;
        }
        request.log.warn(
          { event: "certs:webhook:retry", serial: request.serial, attempt, of: options.attempts, problem },
          "revocation webhook failed",
        );
        throw new AttemptFailed(problem, retryAfterMs);
      };
      try {
        await retry(once, {
          attempts: options.attempts,
          baseMs: RETRY_BASE_MS,
          maxMs: RETRY_AFTER_CAP_MS,
          signal: request.signal,
          // A Retry-After longer than the backoff is honoured, up to the cap.
          delayMs: (error, _attempt, backoff) =>
            Math.min(RETRY_AFTER_CAP_MS, Math.max(backoff, error instanceof AttemptFailed ? (error.retryAfterMs ?? 0) : 0)),
        });
      } catch (error) {
        // An ordinary error, so that the bin's retry (or the next sweep) takes over.
        if (error instanceof AttemptFailed) throw new Error(`${error.message} (serial ${request.serial}; ${options.attempts} attempts)`);
        throw error;
      }
    },

    async check({ signal }) {
      return [await checkReachable(options, target, timeoutMs, signal)];
    },
  };
}

async function checkReachable(options: WebhookRevokerOptions, target: string, timeoutMs: number, signal: AbortSignal): Promise<Diagnostic> {
  try {
    // A HEAD revokes nothing; any HTTP answer proves the endpoint is there.
    const response = await fetch(options.url, { method: "HEAD", signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
    if (response.status >= 500) {
      return { level: "warn", message: `revoker webhook ${target} is reachable but answers ${response.status} to HEAD` };
    }
    return { level: "ok", message: `revoker webhook ${target} is reachable (HEAD answered ${response.status})` };
  } catch (error) {
    return {
      level: "error",
      message: `revoker webhook ${target} is unreachable: ${causeMessage(error)}`,
      hint: "check revoker.webhook.url and that the endpoint is reachable from this host",
    };
  }
}

function isRetryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** The URL for messages: no userinfo, no query (either may hold a secret). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(invalid url)";
  }
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > BODY_EXCERPT ? `${flat.slice(0, BODY_EXCERPT)}…` : flat;
}

function causeMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
