/**
 * Every error purger raises on purpose. The CLI maps `code` to an exit code and
 * shows `message` then `hint`; core never prints or exits.
 */
export type PurgerErrorCode =
  /** purger.yaml is malformed or invalid (exit 2). */
  | "CONFIG"
  /** a table, column, bucket … named by the config does not exist (exit 2). */
  | "TARGET"
  /** command-line usage (exit 2). */
  | "USAGE"
  /** a plugin could not be loaded or has an invalid shape (exit 2). */
  | "PLUGIN"
  /** a bin payload or kind is invalid (exit 2). */
  | "PAYLOAD"
  /** another process holds the entry's lock and the caller asked not to wait (exit 1). */
  | "LOCKED"
  /** a run failed (exit 1). */
  | "RUN"
  /** the database could not be reached or started (exit 1). */
  | "DATABASE"
  /** the operation was interrupted (exit 130). */
  | "INTERRUPTED"
  /** a failure no retry can fix (a refusal by an external system): `retry` and the bin do not try again (exit 1). */
  | "PERMANENT";

export interface PurgerErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  cause?: unknown;
  /** Machine-readable details (file, line, path …). */
  details?: Record<string, unknown>;
}

/**
 * The mark every PurgerError carries, shared by every copy of core in a
 * process (`Symbol.for`): a plugin that resolves its own @purger/core throws
 * errors of another class object, and they must still count as purger's.
 */
const BRAND = Symbol.for("purger.error");

export class PurgerError extends Error {
  readonly code: PurgerErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: PurgerErrorCode, message: string, options: PurgerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PurgerError";
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** `instanceof PurgerError` holds for the errors of any copy of core (subclasses keep the usual rule). */
  static [Symbol.hasInstance](value: unknown): boolean {
    return this === PurgerError ? isPurgerError(value) : Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

Object.defineProperty(PurgerError.prototype, BRAND, { value: true });

/** Exit code of the CLI for an error (the table "Exit codes" in the repository README). */
export function exitCodeOf(error: unknown): number {
  if (!isPurgerError(error)) return 1;
  switch (error.code) {
    case "CONFIG":
    case "TARGET":
    case "USAGE":
    case "PLUGIN":
    case "PAYLOAD":
      return 2;
    case "INTERRUPTED":
      return 130;
    default:
      return 1;
  }
}

/**
 * Whether `error` is a PurgerError (of `code`, when given), made by this or any
 * other copy of core. Check this, never `instanceof`, against errors a plugin threw.
 */
export function isPurgerError(error: unknown, code?: PurgerErrorCode): error is PurgerError {
  if (typeof error !== "object" || error === null || (error as Record<symbol, unknown>)[BRAND] !== true) return false;
  return code === undefined || (error as { code?: unknown }).code === code;
}
