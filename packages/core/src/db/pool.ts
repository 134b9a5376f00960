import pg from "pg";

// bigint (count(*), bigserial ids) arrives as text by default; our counts fit in a double.
pg.types.setTypeParser(20, (value) => {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
});

export interface PoolOptions {
  url: string;
  /** Maximum connections of this process. */
  max?: number;
  applicationName?: string;
}

/** A pg pool with purger's defaults. Errors of idle clients are reported through `onError` instead of crashing. */
export function createPool(options: PoolOptions, onError?: (error: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
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
