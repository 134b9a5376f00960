/**
 * How many connections a process may open, read from the server at start:
 * `max_connections` less the reserved slots and the sessions already open,
 * and the database's and the role's own connection limits. A pool sized
 * past it fails mid-run with "too many clients", in the middle of a batch.
 */
import pg from "pg";
import { PurgerError } from "../errors.js";

export interface ConnectionBudget {
  /** Connections this process may still open. */
  available: number;
  maxConnections: number;
  /** `superuser_reserved_connections` + `reserved_connections` (PostgreSQL 16+). */
  reserved: number;
  /** Client sessions open on the server, other than the probe's. */
  inUse: number;
}

/** Reads the budget over one short-lived connection of its own (closed before returning). */
export async function connectionBudget(url: string): Promise<ConnectionBudget> {
  const client = new pg.Client({ connectionString: url, application_name: "purger" });
  await client.connect();
  try {
    const { rows } = await client.query<{
      max: number;
      reserved: number;
      in_use: number;
      db_limit: number;
      db_in_use: number;
      role_limit: number;
      role_in_use: number;
    }>(
      `WITH others AS (
         SELECT datname, usename FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
       )
       SELECT current_setting('max_connections')::int AS max,
              current_setting('superuser_reserved_connections')::int
                + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved,
              (SELECT count(*) FROM others)::int AS in_use,
              (SELECT datconnlimit FROM pg_database WHERE datname = current_database()) AS db_limit,
              (SELECT count(*) FROM others WHERE datname = current_database())::int AS db_in_use,
              (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) AS role_limit,
              (SELECT count(*) FROM others WHERE usename = current_user)::int AS role_in_use`,
    );
    const row = rows[0]!;
    // The probe's own slot is free again once it closes, so it is not counted as in use.
    const limits = [row.max - row.reserved - row.in_use];
    if (row.db_limit >= 0) limits.push(row.db_limit - row.db_in_use);
    if (row.role_limit >= 0) limits.push(row.role_limit - row.role_in_use);
    return { available: Math.max(0, Math.min(...limits)), maxConnections: row.max, reserved: row.reserved, inUse: row.in_use };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Connections per task of `worker.concurrency`: an entry's lock session and batch transaction, and a bin handler's. */
const PER_TASK = 3;
/** The worker itself: the LISTEN sessions of its two worker pools, job fetches, the heartbeat, the bin item locks, the admin endpoint. */
const PER_WORKER = 5;

/**
 * Connections a worker of `concurrency` tasks needs. Runs and bin items have worker pools of their own,
 * each of `concurrency` slots (engine/worker.ts): a running entry holds its lock session and its batch
 * transaction, a bin handler one more.
 */
export function workerConnections(concurrency: number): number {
  return concurrency * PER_TASK + PER_WORKER;
}

/**
 * The concurrency and pool size that fit in `available` connections: the concurrency asked for
 * when it fits (the pool takes at least 10 then, within the room), else the largest that fits.
 * Throws PurgerError("DATABASE") when not even one task fits.
 */
export function planWorkerConnections(concurrency: number, available: number): { concurrency: number; poolSize: number } {
  if (workerConnections(concurrency) <= available) {
    return { concurrency, poolSize: Math.min(Math.max(10, workerConnections(concurrency)), available) };
  }
  const fits = Math.floor((available - workerConnections(0)) / PER_TASK);
  if (fits < 1) {
    throw new PurgerError(
      "DATABASE",
      `the database has room for ${available} more connections; purger run needs at least ${workerConnections(1)} (concurrency 1: ${PER_TASK} per task and ${workerConnections(0)} for the worker itself)`,
      {
        hint: "close idle sessions, lower other clients' pools, or raise max_connections (or the database's or role's CONNECTION LIMIT)",
      },
    );
  }
  return { concurrency: fits, poolSize: workerConnections(fits) };
}
