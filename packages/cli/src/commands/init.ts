/** `purger init`: write a starter purger.yaml (never over an existing file unless --force). */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PurgerError } from "@purger/core/host";
import type { Io } from "../context.js";

export const STARTER = `# purger.yaml — see \`purger schema\` for every key.
# database.url absent → an embedded PostgreSQL under .purger/ (fine for trying purger out).
# database:
#   url: \${DATABASE_URL}
worker:
  concurrency: 4
  shutdownTimeout: 30s
defaults:
  batchSize: 1000
  timeout: 10m
  jitter: 10%
plugins:
  # Hard-delete revoked access tokens an hour after revocation.
  - id: revoked-access-tokens
    use: "@purger/plugin-retention"
    schedule: "17 * * * *"
    retention: 1h
    guard: { maxRows: 1000000 }
    options:
      table: oauth2_access_tokens
      column: revoked_at
`;

export async function initCommand(flags: { force?: boolean }, io: Io): Promise<number> {
  const file = join(io.cwd, "purger.yaml");
  if (existsSync(file) && !flags.force) {
    throw new PurgerError("USAGE", `${file} already exists`, { hint: "use --force to overwrite it" });
  }
  writeFileSync(file, STARTER);
  io.out(`wrote ${file}\nnext: edit it, then \`purger validate\` and \`purger once revoked-access-tokens --dry-run\`\n`);
  return 0;
}
