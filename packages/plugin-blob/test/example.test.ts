/**
 * examples/fleet: the IoT fleet service. The real purger.yaml is loaded and
 * validated, schema.sql builds the database, `purger doctor`'s checks find
 * nothing to fix, a team's deletion bins its storage in the web server's own
 * transaction and a worker deletes it, then every scheduled entry runs once
 * (as `purger once` would) and does exactly its share.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binKinds, checkEntry, loadConfig, migrate, runEntry, startWorker } from "@purger/core/host";
import { createTestDatabase, type TestDatabase } from "@purger/core/testing";
import { listKeys, putObjects, seedObjects, spreadKeys, startTestS3, type TestS3 } from "./fixtures.js";

const example = (file: string) => fileURLToPath(new URL(`../../../examples/fleet/${file}`, import.meta.url));
const cliDir = fileURLToPath(new URL("../../cli", import.meta.url));

let db: TestDatabase;
let s3: TestS3;

beforeAll(async () => {
  [db, s3] = await Promise.all([createTestDatabase("fleet_example"), startTestS3(["fleet"])]);
});

afterAll(async () => {
  await Promise.all([db?.drop(), s3?.stop()]);
});

describe("examples/fleet (IoT fleet service)", () => {
  it("deletes a deleted team's blobs from the bin, sweeps stale uploads and old rows, and a second pass is a no-op", async () => {
    const pool = db.pool;
    await pool.query(await readFile(example("schema.sql"), "utf8"));
    await pool.query(`
      INSERT INTO teams (id, name) VALUES (42, 'acme'), (420, 'globex');
      INSERT INTO robots (team_id, name) VALUES (42, 'r1'), (420, 'r2');
      INSERT INTO uploads (team_id, object_key, is_uploaded, created_at) VALUES
        (420, 'uploads/420/stale.bin', false, now() - interval '30 hours'),
        (420, 'uploads/420/never-came.bin', false, now() - interval '3 days'),
        (420, 'uploads/420/fresh.bin', false, now() - interval '2 hours'),
        (420, 'uploads/420/done.bin', true, now() - interval '10 days');
      INSERT INTO telemetry (robot_id, recorded_at) SELECT 1, now() - interval '40 days' FROM generate_series(1, 10);
      INSERT INTO telemetry (robot_id, recorded_at) SELECT 1, now() - interval '1 day' FROM generate_series(1, 5);
      INSERT INTO robot_manifests (robot_id, created_at) VALUES
        (1, now() - interval '100 days'), (1, now() - interval '120 days'), (1, now() - interval '150 days'),
        (2, now() - interval '200 days'), (3, now() - interval '1 day');
      INSERT INTO tuf_metadata (role, version, expires_at) VALUES
        ('timestamp', 1, now() - interval '10 days'), ('timestamp', 2, now() - interval '9 days'),
        ('timestamp', 3, now() - interval '1 day'), ('root', 1, now() + interval '365 days');
    `);
    const team42 = spreadKeys("teams/42/", 300, 10);
    const team420 = spreadKeys("teams/420/", 20, 4);
    await seedObjects(s3, "fleet", [...team42, ...team420]);
    await putObjects(s3.client, "fleet", ["uploads/420/stale.bin", "uploads/420/fresh.bin", "uploads/420/done.bin"]);

    const config = await loadConfig({
      configPath: example("purger.yaml"),
      env: { DATABASE_URL: "postgres://unused", S3_ENDPOINT: s3.endpoint, FLEET_BUCKET: "fleet" },
      resolvePaths: [cliDir],
    });
    expect(config.entries.map((e) => [e.id, e.use])).toEqual([
      ["blobs", "@purger/plugin-blob"],
      ["telemetry", "@purger/plugin-retention"],
      ["robot-manifests", "@purger/plugin-retention"],
      ["tuf-metadata", "@purger/plugin-retention"],
      ["certs", "@purger/plugin-certs"],
    ]);
    const kinds = binKinds(config.entries);
    await migrate(pool, {
      workerSchema: config.worker.schema,
      kinds: kinds.map((k) => ({ kind: k.kind, entry: k.entry.id, handler: k.handlerName })),
    });

    for (const entry of config.entries) {
      const diagnostics = await checkEntry({ pool, entry, configDir: config.dir });
      expect({ id: entry.id, problems: diagnostics.filter((d) => d.level !== "ok") }).toEqual({ id: entry.id, problems: [] });
    }

    // The web server deletes team 42: the team's row and its storage go in one transaction.
    const web = await pool.connect();
    try {
      await web.query("BEGIN");
      await web.query("UPDATE teams SET deleted_at = now() WHERE id = 42");
      await web.query("SELECT purger.enqueue('blobs.prefix', jsonb_build_object('prefix', 'teams/' || $1::text || '/'))", [42]);
      await web.query("COMMIT");
    } finally {
      web.release();
    }
    // A worker drains the bin (schedules off: this test runs the scheduled entries itself, below).
    const worker = await startWorker({ config: { ...config, entries: config.entries.map((e) => ({ ...e, schedule: null })) }, pool });
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { rows } = await pool.query<{ status: string; processed: number }>(
          "SELECT status, processed FROM purger.bin WHERE kind = 'blobs.prefix'",
        );
        if (rows[0]?.status === "done") {
          expect(rows[0].processed).toBe(300);
          break;
        }
        if (rows[0]?.status === "failed" || Date.now() > deadline) throw new Error(`bin item: ${JSON.stringify(rows)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await worker.stop();
    }
    expect(await listKeys(s3.client, "fleet", "teams/")).toEqual([...team420].sort());

    const processed: Record<string, number> = {};
    for (const entry of config.entries) {
      const result = await runEntry({ pool, entry, trigger: "manual", onLocked: "fail", configDir: config.dir });
      expect({ id: entry.id, status: result.status, error: result.error }).toEqual({ id: entry.id, status: "succeeded", error: undefined });
      processed[entry.id] = result.processed;
    }
    expect(processed).toEqual({ blobs: 2, telemetry: 10, "robot-manifests": 2, "tuf-metadata": 2, certs: 0 });
    // The sweep deleted the rows; their objects' deletes wait in the bin until a worker takes them.
    expect(await listKeys(s3.client, "fleet", "uploads/")).toEqual([
      "uploads/420/done.bin",
      "uploads/420/fresh.bin",
      "uploads/420/stale.bin",
    ]);
    const objects = await startWorker({ config: { ...config, entries: config.entries.map((e) => ({ ...e, schedule: null })) }, pool });
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { rows } = await pool.query<{ status: string }>("SELECT status FROM purger.bin WHERE kind = 'blobs.object' ORDER BY id");
        if (rows.length === 2 && rows.every((r) => r.status === "done")) break;
        if (rows.some((r) => r.status === "failed") || Date.now() > deadline) throw new Error(`bin items: ${JSON.stringify(rows)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await objects.stop();
    }
    expect(await listKeys(s3.client, "fleet", "uploads/")).toEqual(["uploads/420/done.bin", "uploads/420/fresh.bin"]);
    const { rows: uploads } = await pool.query<{ object_key: string }>("SELECT object_key FROM uploads ORDER BY object_key");
    expect(uploads.map((u) => u.object_key)).toEqual(["uploads/420/done.bin", "uploads/420/fresh.bin"]);

    for (const entry of config.entries) {
      const again = await runEntry({ pool, entry, trigger: "manual", onLocked: "fail", configDir: config.dir });
      expect({ id: entry.id, processed: again.processed }).toEqual({ id: entry.id, processed: 0 });
    }
  }, 120_000);
});
