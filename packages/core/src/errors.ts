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
  | "INTERRUPTED";

export interface PurgerErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  cause?: unknown;
  /** Machine-readable details (file, line, path …). */
  details?: Record<string, unknown>;
}

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
}

/** Exit code of the CLI for an error (SPEC §7). */
export function exitCodeOf(error: unknown): number {
  if (!(error instanceof PurgerError)) return 1;
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

export function isPurgerError(error: unknown, code?: PurgerErrorCode): error is PurgerError {
  return error instanceof PurgerError && (code === undefined || error.code === code);
}
