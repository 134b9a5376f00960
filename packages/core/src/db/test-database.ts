/**
 * Databases for the test suite. One PostgreSQL serves the whole vitest run
 * (test/global-setup.ts starts it and sets PURGER_TEST_PG_URL); every test
 * file takes a fresh database of its own on it, so files run in parallel
 * without seeing each other's tables.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { PurgerError } from "../errors.js";
import { quoteIdent } from "./quote.js";
// The CLI's pg type parsers (bigint counts as numbers), which a plugin's tests without @purger/core/host would otherwise lack.
import "./pool.js";

export interface TestDatabase {
  /** URL of the new database. */
  url: string;
  pool: pg.Pool;
  /** Ends `pool` and drops the database, closing any session still on it. */
  drop(): Promise<void>;
}

/** The test server's URL (set by the vitest global setup). */
export function getTestServerUrl(): string {
  const url = process.env.PURGER_TEST_PG_URL;
  if (!url) {
    throw new PurgerError("DATABASE", "PURGER_TEST_PG_URL is not set, so there is no test PostgreSQL", {
      hint: "Run the tests with vitest from the repository root (its globalSetup, test/global-setup.ts, starts the server), or set PURGER_TEST_PG_URL to a PostgreSQL superuser URL.",
    });
  }
  return url;
}

/**
 * Creates an empty, uniquely named database on the test server.
 * @param name a readable part of the database name (the test file, say)
 */
export async function createTestDatabase(name = "test"): Promise<TestDatabase> {
  const serverUrl = getTestServerUrl();
  const database = uniqueName(name);
  await onServer(serverUrl, (client) => client.query(`create database ${quoteIdent(database)}`));
  const url = withDatabase(serverUrl, database);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // A client's error (a server restart, `drop()` forcing sessions out) must not crash the test
  // process — as in createPool; it also keeps graphile-worker from warning about the pool in every runBin.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  let dropped: Promise<void> | undefined;
  return {
    url,
    pool,
    drop: () =>
      (dropped ??= (async () => {
        await pool.end();
        await onServer(serverUrl, (client) => client.query(`drop database if exists ${quoteIdent(database)} with (force)`));
      })()),
  };
}

/**
 * For the global setup: drops the databases that createTestDatabase made in
 * processes that are gone (a crashed or interrupted run). Returns their names.
 */
export async function dropOrphanTestDatabases(serverUrl: string): Promise<string[]> {
  return onServer(serverUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>("select datname from pg_database where datname like 't\\_%'");
    const orphans = rows
      .map((row) => row.datname)
      .filter((name) => {
        const pid = Number(/_(\d+)_\d+_[0-9a-f]{6}$/.exec(name)?.[1]);
        return Number.isInteger(pid) && pid > 0 && !isAlive(pid);
      });
    for (const name of orphans) await client.query(`drop database if exists ${quoteIdent(name)} with (force)`);
    return orphans;
  });
}

/**
 * For the global setup: a session held open for the whole test run, so that
 * the run owning a shared server can tell at teardown whether other runs
 * (another terminal, another engineer) still use it.
 */
export async function openTestRunLease(serverUrl: string): Promise<{ release(): Promise<{ othersActive: boolean }> }> {
  const application = "purger-test-run";
  const client = new pg.Client({ connectionString: serverUrl, application_name: application });
  await client.connect();
  return {
    async release() {
      try {
        const { rows } = await client.query<{ count: number }>(
          "select count(*)::int as count from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()",
          [application],
        );
        return { othersActive: (rows[0]?.count ?? 0) > 0 };
      } finally {
        await client.end();
      }
    },
  };
}

let sequence = 0;

/** `t_<name>_<pid>_<n>_<random>`: the pid lets a later run drop databases of a crashed one. */
function uniqueName(name: string): string {
  const readable = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_|_$/g, "")
    .slice(0, 30);
  return `t_${readable || "test"}_${process.pid}_${++sequence}_${randomBytes(3).toString("hex")}`;
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

async function onServer<T>(url: string, action: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await action(client);
  } finally {
    await client.end();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
