/**
 * The revoker adapter: the one small interface between the certificate
 * lifecycle and whatever actually revokes (a table a CA reads, an HTTP
 * endpoint, a third party's module). Delivery is at least once: a revoker may
 * be asked twice for one serial (a retry after a crash, two workers), always
 * with the same idempotency key.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PurgerError, type Diagnostic, type EntryInfo, type Logger } from "@purger/core";
import type pg from "pg";

/** One revocation asked of a revoker. */
export interface RevokeRequest {
  /** The certificate's serial, as text (never empty). */
  serial: string;
  /** Why (`unspecified` when nobody said). */
  reason: string;
  /** Stable per serial (`purger-revoke-<sha256(serial)>`): the same on every retry, so the receiver can dedup. */
  idempotencyKey: string;
  /** The certificate's key in its table, as text. */
  certificateId: string;
  /**
   * A client inside the transaction that marks the certificate `revoked`.
   * Write through it and the revocation commits together with the status — or not at all.
   * For an `external` revoker: a connection with no transaction open (what it writes commits at once).
   */
  client: pg.ClientBase;
  /** Aborts on shutdown, on the entry's timeout, or when the sweep's slice is up. */
  signal: AbortSignal;
  log: Logger;
}

/**
 * What revokes a certificate. `revoke` resolves when the revocation is recorded
 * (or was already); it throws to fail. Throw `PurgerError("PAYLOAD", …)` for a
 * refusal that no retry can fix (the bin item fails at once, visibly); any other
 * error is retried with backoff.
 */
export interface Revoker {
  revoke(request: RevokeRequest): Promise<void>;
  /**
   * True for a revoker that calls another system (HTTP, a CA's API) rather
   * than write through `request.client`. The sweep then calls it with no
   * transaction open and no row locked, and marks the certificate `revoked` in
   * a short transaction afterwards, so a receiver that hangs holds no lock;
   * a crash in between re-sends the revocation (same idempotency key).
   * Otherwise (the default) `revoke` runs inside that short transaction, with
   * the certificate's row locked: keep it quick.
   */
  external?: boolean;
  /** Diagnostics for `purger doctor` (reachability, permissions …). */
  check?(ctx: { pool: pg.Pool; signal: AbortSignal }): Promise<Diagnostic[]>;
  /** Release connections or timers; called when the entry's state is released. */
  close?(): Promise<void>;
}

/** What a revoker factory (a module's default export) is given. */
export interface RevokerInit<T = Record<string, unknown>> {
  /** The entry's `revoker.options`, as written in purger.yaml (`{}` when absent). */
  options: T;
  pool: pg.Pool;
  log: Logger;
  entry: EntryInfo;
}

export type RevokerFactory<T = Record<string, unknown>> = (init: RevokerInit<T>) => Revoker | Promise<Revoker>;

/** For a third party's revoker module: an identity function that exists for its types. */
export function defineRevoker<T = Record<string, unknown>>(revoker: Revoker | RevokerFactory<T>): Revoker | RevokerFactory<T> {
  return revoker;
}

/** The idempotency key of a serial's revocation: the same for every attempt and every process. */
export function idempotencyKey(serial: string): string {
  return `purger-revoke-${createHash("sha256").update(serial).digest("hex")}`;
}

/**
 * Load `revoker.module`: a path relative to the config file's directory, an
 * absolute path or a package name. Its default export (or a `revoker` export)
 * is a `Revoker` or a `RevokerFactory`.
 */
export async function loadModuleRevoker(specifier: string, init: RevokerInit): Promise<Revoker> {
  const url = resolveModule(specifier, init.entry.configDir);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new PurgerError("PLUGIN", `options.revoker.module: cannot load ${JSON.stringify(specifier)}: ${(error as Error).message}`, {
      hint: `resolved from ${init.entry.configDir}`,
      cause: error,
    });
  }
  const exported = loaded.default ?? loaded.revoker;
  let revoker: unknown = exported;
  if (typeof exported === "function") revoker = await (exported as RevokerFactory)(init);
  if (!isRevoker(revoker)) {
    throw new PurgerError(
      "PLUGIN",
      `options.revoker.module: ${JSON.stringify(specifier)} must export (as default) an object with a revoke() function, or a function returning one`,
      { hint: "see the Revoker interface of @purger/plugin-certs" },
    );
  }
  return revoker;
}

function isRevoker(value: unknown): value is Revoker {
  return typeof value === "object" && value !== null && typeof (value as Revoker).revoke === "function";
}

function resolveModule(specifier: string, configDir: string): string {
  if (specifier.startsWith(".") || isAbsolute(specifier)) return pathToFileURL(resolve(configDir, specifier)).href;
  try {
    return pathToFileURL(createRequire(join(configDir, "noop.js")).resolve(specifier)).href;
  } catch {
    return specifier; // let import() resolve it (an ESM-only package) or explain why not
  }
}
