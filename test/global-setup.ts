/**
 * vitest globalSetup of the monorepo: the same global setup a plugin author
 * uses (`@purger/core/testing/setup`), with the server's data in
 * `<repo>/.purger/test-pg` whatever the working directory.
 */
import { fileURLToPath } from "node:url";
import { setupTestServer } from "../packages/core/src/testing-setup.js";

export default function setup(): Promise<() => Promise<void>> {
  return setupTestServer({ dir: fileURLToPath(new URL("../.purger/test-pg", import.meta.url)) });
}
