/**
 * examples/fleet, entry `certs`: the real purger.yaml is loaded, schema.sql
 * builds the database, `purger doctor`'s checks find nothing to fix; a team's
 * deletion bins its certificates and credentials in the web server's own
 * transaction and a worker drains the bin; then the schedule's sweep revokes
 * the certificate whose serial appeared, expires what is due, and a second
 * sweep finds nothing.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { binKinds, checkEntry, loadConfig, migrate, runEntry, startWorker } from "@purger/core/host";
import { createTestDatabase, type TestDatabase } from "@purger/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const example = (file: string) => fileURLToPath(new URL(`../../../examples/fleet/${file}`, import.meta.url));
const cliDir = fileURLToPath(new URL("../../cli", import.meta.url));

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("certs_fleet_example");
});
afterAll(async () => {
  await db?.drop();
});

describe("examples/fleet: certificates and deferred revocation", () => {
  it("revokes a deleted team's certificates and credentials from the bin, defers the one without a serial, and sweeps", async () => {
    const pool = db.pool;
    await pool.query(await readFile(example("schema.sql"), "utf8"));
    await pool.query(`
      INSERT INTO teams (id, name) VALUES (42, 'acme'), (7, 'globex');
      INSERT INTO robots (id, team_id, name) VALUES (1, 42, 'r1'), (2, 42, 'r2'), (3, 7, 'r3'), (4, 7, 'r4');
      INSERT INTO robot_certificates (id, team_id, robot_id, serial, not_after) VALUES
        (1, 42, 1, '4a:01', now() + interval '90 days'),   -- downloaded: revoked at once
        (2, 42, 2, NULL, now() + interval '90 days'),      -- never downloaded: pending
        (3, 7, 3, '4a:03', now() - interval '1 hour'),     -- expired
        (4, 7, 4, '4a:04', now() + interval '90 days');    -- untouched
      INSERT INTO provisioning_credentials (id, team_id, certificate_id, expires_at) VALUES
        (10, 42, 2, now() + interval '1 day'),             -- team 42: revoked
        (11, 7, 3, now() + interval '1 day'),              -- its certificate expired: expired
        (12, 7, NULL, now() - interval '1 minute'),        -- past expires_at: expired
        (13, 7, 4, now() + interval '1 day');              -- untouched
    `);

    const config = await loadConfig({
      configPath: example("purger.yaml"),
      env: { DATABASE_URL: "postgres://unused", S3_ENDPOINT: "http://127.0.0.1:9", FLEET_BUCKET: "fleet" },
      resolvePaths: [cliDir],
    });
    const certs = config.entries.find((e) => e.id === "certs")!;
    expect(certs.use).toBe("@purger/plugin-certs");
    const kinds = binKinds([certs]);
    expect(kinds.map((k) => k.kind)).toEqual(["certs.revoke", "certs.credential"]);
    await migrate(pool, {
      workerSchema: config.worker.schema,
      kinds: kinds.map((k) => ({ kind: k.kind, entry: k.entry.id, handler: k.handlerName })),
    });

    const diagnostics = await checkEntry({ pool, entry: certs, configDir: config.dir });
    expect(diagnostics.filter((d) => d.level !== "ok")).toEqual([]);

    // The web server deletes team 42 and bins its certificates and credentials in its own transaction.
    const web = await pool.connect();
    try {
      await web.query("BEGIN");
      await web.query("UPDATE teams SET deleted_at = now() WHERE id = 42");
      await web.query(
        "SELECT purger.enqueue('certs.revoke', jsonb_build_object('id', id, 'reason', 'cessationOfOperation')) FROM robot_certificates WHERE team_id = 42",
      );
      await web.query(
        "SELECT purger.enqueue('certs.credential', jsonb_build_object('id', id)) FROM provisioning_credentials WHERE team_id = 42",
      );
      await web.query("COMMIT");
    } finally {
      web.release();
    }
    const worker = await startWorker({ config: { ...config, entries: [{ ...certs, schedule: null }] }, pool });
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { rows } = await pool.query<{ open: number }>("SELECT count(*)::int AS open FROM purger.bin WHERE status = 'pending'");
        if (rows[0]!.open === 0) break;
        if (Date.now() > deadline) throw new Error("bin not drained");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await worker.stop();
    }
    const { rows: items } = await pool.query("SELECT kind, status FROM purger.bin ORDER BY id");
    expect(items).toEqual([
      { kind: "certs.revoke", status: "done" },
      { kind: "certs.revoke", status: "done" },
      { kind: "certs.credential", status: "done" },
    ]);
    expect(await certificateStates()).toEqual(["1 revoked", "2 revoking", "3 active", "4 active"]);
    expect(await credentialStates()).toEqual(["10 revoked", "11 active", "12 active", "13 active"]);

    // Robot 2 downloads its certificate at last; the schedule's sweep revokes it.
    await pool.query("UPDATE robot_certificates SET serial = '4a:02' WHERE id = 2");
    const sweep = await runEntry({ pool, entry: certs, trigger: "manual", onLocked: "fail", configDir: config.dir });
    expect(sweep).toMatchObject({
      status: "succeeded",
      processed: 4,
      tables: { certificates_expired: 1, certificates_revoked: 1, credentials_expired: 2 },
    });
    expect(await certificateStates()).toEqual(["1 revoked", "2 revoked", "3 expired", "4 active"]);
    expect(await credentialStates()).toEqual(["10 revoked", "11 expired", "12 expired", "13 active"]);
    const { rows: revoked } = await pool.query("SELECT serial, reason FROM certificate_revocations ORDER BY serial");
    expect(revoked).toEqual([
      { serial: "4a:01", reason: "cessationOfOperation" },
      { serial: "4a:02", reason: "cessationOfOperation" },
    ]);

    const again = await runEntry({ pool, entry: certs, trigger: "manual", onLocked: "fail", configDir: config.dir });
    expect(again).toMatchObject({ status: "succeeded", processed: 0 });
  }, 120_000);
});

async function certificateStates(): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string; status: string }>("SELECT id, status FROM robot_certificates ORDER BY id");
  return rows.map((r) => `${r.id} ${r.status}`);
}

async function credentialStates(): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string; status: string }>("SELECT id, status FROM provisioning_credentials ORDER BY id");
  return rows.map((r) => `${r.id} ${r.status}`);
}
