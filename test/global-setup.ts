/**
 * vitest globalSetup: one embedded PostgreSQL for the whole test run, data in
 * `<repo>/.purger/test-pg` (kept between runs), its URL handed to the test
 * workers as PURGER_TEST_PG_URL (vitest starts the workers with this
 * process's environment). Test files create their own databases on it with
 * `createTestDatabase()`.
 *
 * Several runs may share the server (two terminals, two engineers): each run
 * holds a lease session, and the last run to finish stops the server.
 */
import { fileURLToPath } from "node:url";
import { startEmbeddedPostgres } from "../packages/core/src/db/embedded.js";
import { dropOrphanTestDatabases, openTestRunLease } from "../packages/core/src/db/test-database.js";

export default async function setup(): Promise<() => Promise<void>> {
  const dir = fileURLToPath(new URL("../.purger/test-pg", import.meta.url));
  const server = await startEmbeddedPostgres({ dir, maxConnections: 300 });
  process.env.PURGER_TEST_PG_URL = server.url;
  const lease = await openTestRunLease(server.url);
  await dropOrphanTestDatabases(server.url);

  return async () => {
    const { othersActive } = await lease.release();
    if (othersActive) return;
    // The last run out stops the server, also when the run that started it has finished (it is adopted).
    const last = server.owned ? server : await startEmbeddedPostgres({ dir });
    if (last.owned) await last.stop();
  };
}
