/**
 * A failure that trying again cannot fix: an external system refused the
 * request (a 4xx), the item names something that is gone for good. `retry`
 * stops at once, and the bin marks the item failed at its first attempt
 * instead of spending its remaining attempts and hours of backoff.
 */
import { isPurgerError, PurgerError, type PurgerErrorOptions } from "../errors.js";

/**
 * Wrap `cause` (or a message) as a permanent failure: a `PurgerError` with
 * code `PERMANENT`, whose message is `message` or the cause's message.
 *
 * @example
 * if (response.status === 404) throw permanent(`object ${key} is gone`);
 * try { … } catch (error) { throw permanent(error); }
 */
export function permanent(cause: unknown, options: Omit<PurgerErrorOptions, "cause"> & { message?: string } = {}): PurgerError {
  if (isPurgerError(cause, "PERMANENT")) return cause;
  const text = typeof cause === "string" ? cause : cause instanceof Error ? cause.message : String(cause);
  const { message, ...rest } = options;
  return new PurgerError("PERMANENT", message ?? text, { ...rest, ...(typeof cause === "string" ? {} : { cause }) });
}

/**
 * Whether retrying `error` is pointless: a `PERMANENT` error, or one of the
 * codes that mean the input itself is wrong (`PAYLOAD`, `CONFIG`). Works for
 * errors of any copy of core.
 */
export function isPermanent(error: unknown): boolean {
  return isPurgerError(error, "PERMANENT") || isPurgerError(error, "PAYLOAD") || isPurgerError(error, "CONFIG");
}
