import pg from "pg";
import "./pg-types.js";

export interface PoolOptions {
  url: string;
  /** Maximum connections of this process. */
  max?: number;
  applicationName?: string;
}

/** A pg pool with purger's defaults. Errors of idle clients are reported through `onError` instead of crashing. */
export function createPool(options: PoolOptions, onError?: (error: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    ...withUtcSession(options.url),
    max: options.max ?? 10,
    application_name: options.applicationName ?? "purger",
    idleTimeoutMillis: 30_000,
  });
  // Errors of idle or checked-out clients (a restarted server) must not crash the process.
  pool.on("error", (error) => onError?.(error));
  pool.on("connect", (client) => {
    client.on("error", (error) => onError?.(error));
  });
  return pool;
}

/**
 * The session `TimeZone` decides how a `timestamp` or `date` is converted to
 * and from an instant; purger's own sessions always use UTC, whatever the
 * database, the role or the URL default to (test/pool.test.ts). pg lets a
 * URL's `options` replace the `options` setting, so they are merged here,
 * ours last (the last `-c` of a name wins).
 */
function withUtcSession(url: string): { connectionString: string; options: string } {
  const utc = "-c TimeZone=UTC";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { connectionString: url, options: joinOptions(process.env.PGOPTIONS, utc) };
  }
  const own = parsed.searchParams.get("options");
  if (own === null) return { connectionString: url, options: joinOptions(process.env.PGOPTIONS, utc) };
  parsed.searchParams.delete("options");
  return { connectionString: parsed.toString(), options: joinOptions(own, utc) };
}

function joinOptions(...parts: Array<string | undefined>): string {
  return parts.filter((p) => p !== undefined && p.trim() !== "").join(" ");
}
