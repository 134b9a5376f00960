/**
 * examples/retention: the Matrix Authentication Service's cleanup jobs. The
 * real purger.yaml is loaded and validated, schema.sql and seed.sql build the
 * database, and every entry runs through the engine in file order (which also
 * honours its `after:` chain), each deleting or updating exactly its share.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkEntry, loadConfig, migrate, runEntry } from "@purger/core/host";
import { useDatabase } from "./fixtures.js";

const example = (file: string) => fileURLToPath(new URL(`../../../examples/retention/${file}`, import.meta.url));
const cliDir = fileURLToPath(new URL("../../cli", import.meta.url));
const db = useDatabase("retention_example");

/** What each entry changes on seed.sql's data (100 users), in file order. */
const expected: Record<string, { processed: number; tables?: Record<string, number> }> = {
  "revoked-access-tokens": { processed: 500 },
  "expired-access-tokens": { processed: 500 },
  "revoked-refresh-tokens": { processed: 500 },
  "consumed-refresh-tokens": { processed: 1500 },
  "finished-oauth2-sessions": {
    processed: 100,
    tables: { "public.oauth2_sessions": 100, "public.oauth2_refresh_tokens": 200, "public.oauth2_access_tokens": 100 },
  },
  "finished-compat-sessions": {
    processed: 100,
    tables: {
      "public.compat_sessions": 100,
      "public.compat_refresh_tokens": 100,
      "public.compat_access_tokens": 100,
      "public.compat_sso_logins": 100,
    },
  },
  "finished-user-sessions": { processed: 200, tables: { "public.user_sessions": 200, "public.user_session_authentications": 200 } },
  "authorization-grants": { processed: 100 },
  "device-code-grants": { processed: 100 },
  "email-authentications": {
    processed: 100,
    tables: { "public.user_email_authentications": 100, "public.user_email_authentication_codes": 100 },
  },
  "user-registrations": { processed: 100 },
  "recovery-sessions": { processed: 100, tables: { "public.user_recovery_sessions": 100, "public.user_recovery_tickets": 100 } },
  "upstream-oauth-sessions": { processed: 200 },
  "upstream-oauth-links": {
    processed: 100,
    tables: { "public.upstream_oauth_links": 100, "public.upstream_oauth_authorization_sessions": 0 },
  },
  "user-session-ips": { processed: 200 },
  "oauth2-session-ips": { processed: 200 },
  "compat-session-ips": { processed: 100 },
  "inactive-oauth2-sessions": { processed: 100 },
  "inactive-compat-sessions": { processed: 100 },
  "inactive-user-sessions": { processed: 100 },
  "queue-jobs": { processed: 200 },
  "policy-data": { processed: 15 },
};

describe("examples/retention (Matrix Authentication Service cleanup jobs)", () => {
  it("every entry resolves against schema.sql with every index in place, does its share, and a second pass is a no-op", async () => {
    const pool = db.pool();
    await pool.query(await readFile(example("schema.sql"), "utf8"));
    await pool.query(await readFile(example("seed.sql"), "utf8"));
    await migrate(pool, { workerSchema: "purger_worker" });
    const config = await loadConfig({
      configPath: example("purger.yaml"),
      env: { DATABASE_URL: "postgres://unused" },
      resolvePaths: [cliDir],
    });
    expect(config.entries.map((e) => e.id)).toEqual(Object.keys(expected));

    for (const entry of config.entries) {
      const diagnostics = await checkEntry({ pool, entry, configDir: config.dir });
      expect({ id: entry.id, problems: diagnostics.filter((d) => d.level !== "ok") }).toEqual({ id: entry.id, problems: [] });
    }

    const first: Record<string, { processed: number; tables?: Record<string, number> }> = {};
    for (const entry of config.entries) {
      const result = await runEntry({ pool, entry, trigger: "manual", onLocked: "fail" });
      expect({ id: entry.id, status: result.status, error: result.error }).toEqual({ id: entry.id, status: "succeeded", error: undefined });
      first[entry.id] = { processed: result.processed, ...(result.tables ? { tables: result.tables } : {}) };
    }
    expect(first).toEqual(expected);

    const [policy] = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM policy_data`)).rows;
    expect(policy?.n).toBe(10);
    const [kept] = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM oauth2_refresh_tokens WHERE consumed_at IS NOT NULL`))
      .rows;
    expect(kept?.n).toBe(400); // r2 of the sessions still there: its successor r3 is unconsumed

    for (const entry of config.entries) {
      const again = await runEntry({ pool, entry, trigger: "manual", onLocked: "fail" });
      expect({ id: entry.id, processed: again.processed }).toEqual({ id: entry.id, processed: 0 });
    }
  });
});
