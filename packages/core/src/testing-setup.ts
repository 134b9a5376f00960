/**
 * `@purger/core/testing/setup`: a vitest global setup for a plugin's own
 * repository. It gives every test worker a PostgreSQL superuser URL in
 * `PURGER_TEST_PG_URL`, which `createTestDatabase()` uses:
 *
 * - `PURGER_TEST_PG_URL` already set (CI with its own server): used as it is;
 * - otherwise an embedded PostgreSQL with its data in `.purger/test-pg` of the
 *   working directory (kept between runs, so later runs start in about a
 *   second), stopped by the last test run that uses it.
 *
 * ```ts
 * // vitest.config.ts
 * export default defineConfig({ test: { globalSetup: ["./test/setup.ts"] } });
 * // test/setup.ts
 * export { default } from "@purger/core/testing/setup";
 * ```
 */
import path from "node:path";
import { startEmbeddedPostgres } from "./db/embedded.js";
import { dropOrphanTestDatabases, openTestRunLease } from "./db/test-database.js";

export interface TestServerOptions {
  /**
   * Where the embedded server keeps its data.
   * @defaultValue `.purger/test-pg` in the working directory
   */
  dir?: string;
  /** @defaultValue 300 (tests run in parallel, each with pools of its own) */
  maxConnections?: number;
}

/** Start (or adopt) the test server; returns the teardown vitest calls at the end of the run. */
export async function setupTestServer(options: TestServerOptions = {}): Promise<() => Promise<void>> {
  const given = process.env.PURGER_TEST_PG_URL;
  if (given) {
    await dropOrphanTestDatabases(given);
    return async () => {};
  }
  const dir = options.dir ?? path.resolve(".purger/test-pg");
  const server = await startEmbeddedPostgres({ dir, maxConnections: options.maxConnections ?? 300 });
  process.env.PURGER_TEST_PG_URL = server.url;
  const lease = await openTestRunLease(server.url);
  await dropOrphanTestDatabases(server.url);

  return async () => {
    const { othersActive } = await lease.release();
    // Several runs may share the server (two terminals): the last one out stops it, also when another run started it.
    if (othersActive) return;
    const last = server.owned ? server : await startEmbeddedPostgres({ dir });
    if (last.owned) await last.stop();
  };
}

export default function setup(): Promise<() => Promise<void>> {
  return setupTestServer();
}
