/**
 * Stale pending uploads (see the package README): the scheduled sweep through the
 * real run loop (`runPlugin`), `<id>.upload` through the real bin, `purger
 * doctor`'s checks — real PostgreSQL, real s3rver.
 */
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { binKinds, enqueue } from "@purger/core/host";
import {
  checkPlugin,
  createTestDatabase,
  runBin,
  runPlugin,
  testEntry,
  type BinItem,
  startBinWorker,
  type TestDatabase,
} from "@purger/core/testing";
import blob from "../src/index.js";
import { captureLogger, type Line } from "./log.js";
import { blobOptions, listKeys, putObjects, startTestS3, type TestS3 } from "./fixtures.js";
import { startS3Proxy } from "./s3-proxy.js";

let db: TestDatabase;
let s3: TestS3;

const UPLOADS = { table: "uploads", column: "created_at", flag: "is_uploaded", objectKey: "object_key" };

beforeAll(async () => {
  [db, s3] = await Promise.all([createTestDatabase("blob-uploads"), startTestS3(["media", "media-other"])]);
});

afterAll(async () => {
  await Promise.all([db?.drop(), s3?.stop()]);
});

beforeEach(async () => {
  await db.pool.query(`
    DO $$ BEGIN
      IF to_regclass('purger.bin') IS NOT NULL THEN UPDATE purger.bin SET status = 'dropped' WHERE status = 'pending'; END IF;
    END $$;
    DROP TABLE IF EXISTS upload_refs, uploads;
    CREATE TABLE uploads (
      id bigserial PRIMARY KEY,
      name text NOT NULL UNIQUE,
      object_key text,
      is_uploaded boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL
    );
    CREATE INDEX uploads_pending_created_idx ON uploads (created_at) WHERE NOT is_uploaded;
    CREATE INDEX uploads_object_key_idx ON uploads (object_key);
  `);
  const existing = await listKeys(s3.client, "media");
  if (existing.length > 0) {
    const { DeleteObjectsCommand } = await import("@aws-sdk/client-s3");
    await s3.client
      .send(new DeleteObjectsCommand({ Bucket: "media", Delete: { Objects: existing.map((Key) => ({ Key })) } }))
      .catch(() => undefined);
  }
});

/** Insert uploads by name: age in hours, whether its object exists, whether it completed. */
async function seed(
  rows: { name: string; hours: number; object?: boolean; uploaded?: boolean; key?: string | null }[],
): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const row of rows) {
    const key = row.key === undefined ? `uploads/${row.name}.bin` : row.key;
    const { rows: inserted } = await db.pool.query<{ id: string }>(
      `INSERT INTO uploads (name, object_key, is_uploaded, created_at) VALUES ($1, $2, $3, now() - make_interval(hours => $4)) RETURNING id::text`,
      [row.name, key, row.uploaded ?? false, row.hours],
    );
    ids[row.name] = inserted[0]!.id;
    if (row.object && key) await putObjects(s3.client, "media", [key]);
  }
  return ids;
}

/** The object deletes the sweep put in the bin (pending), by key. */
async function queuedObjects(entry = "uploads"): Promise<string[]> {
  const { rows } = await db.pool.query<{ key: string }>(
    "SELECT payload->>'key' AS key FROM purger.bin WHERE kind = $1 AND status = 'pending' ORDER BY 1",
    [`${entry}.object`],
  );
  return rows.map((r) => r.key);
}

/** Let a bin worker handle every pending `<entry>.object` item (one attempt each), as `purger run` would after the sweep. */
async function drainBin(endpoint = s3.endpoint, entry = "uploads"): Promise<BinItem[]> {
  const { rows } = await db.pool.query<{ id: string }>(
    "UPDATE purger.bin SET max_attempts = 1 WHERE kind = $1 AND status = 'pending' RETURNING id::text",
    [`${entry}.object`],
  );
  const worker = await startBinWorker(blob, {
    pool: db.pool,
    id: entry,
    options: blobOptions(endpoint, "media", { uploads: UPLOADS }),
    retention: "24h",
  });
  await worker.start();
  try {
    const items = await worker.settle(rows.map((r) => r.id));
    return items.sort((a, b) => String(a.payload["key"]).localeCompare(String(b.payload["key"])));
  } finally {
    await worker.stop();
  }
}

async function remainingRows(): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>("SELECT name FROM uploads ORDER BY name");
  return rows.map((r) => r.name);
}

const itemLines = (lines: Line[]) =>
  lines
    .filter((l) => "outcome" in l)
    .map((l) => `${String(l.key)} ${String(l.outcome)}`)
    .sort();

describe("uploads sweep", () => {
  it("deletes stale pending uploads (row, then its object through the bin) and leaves fresh, confirmed and locked ones; the locked one goes next time", async () => {
    await seed([
      { name: "stale-with-object", hours: 30, object: true },
      { name: "stale-never-uploaded", hours: 48 },
      { name: "stale-no-key", hours: 26, key: null },
      { name: "stale-locked", hours: 40, object: true },
      { name: "stale-2", hours: 25, object: true },
      { name: "fresh-pending", hours: 1, object: true },
      { name: "almost-stale", hours: 23, object: true },
      { name: "stale-confirmed", hours: 72, object: true, uploaded: true },
    ]);
    await putObjects(s3.client, "media-other", ["uploads/stale-2.bin"]);
    // Another transaction (the web server confirming it) holds the row.
    const holder = await db.pool.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT * FROM uploads WHERE name = 'stale-locked' FOR UPDATE");
    const log = captureLogger();
    try {
      const result = await runPlugin(blob, {
        pool: db.pool,
        id: "uploads",
        options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
        retention: "24h",
        batchSize: 2,
        log,
      });
      expect(result).toMatchObject({ status: "succeeded", processed: 4, tables: { "public.uploads": 4, "objects queued": 3 } });
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    expect(await remainingRows()).toEqual(["almost-stale", "fresh-pending", "stale-confirmed", "stale-locked"]);
    expect(await queuedObjects()).toEqual(["uploads/stale-2.bin", "uploads/stale-never-uploaded.bin", "uploads/stale-with-object.bin"]);
    const items = await drainBin();
    expect(items.map((i) => [i.payload["key"], i.status, i.processed])).toEqual([
      ["uploads/stale-2.bin", "done", 1],
      ["uploads/stale-never-uploaded.bin", "done", 0],
      ["uploads/stale-with-object.bin", "done", 1],
    ]);
    expect(await listKeys(s3.client, "media")).toEqual([
      "uploads/almost-stale.bin",
      "uploads/fresh-pending.bin",
      "uploads/stale-confirmed.bin",
      "uploads/stale-locked.bin",
    ]);
    expect(await listKeys(s3.client, "media-other")).toEqual(["uploads/stale-2.bin"]);
    expect(itemLines(log.lines)).toEqual([
      "null no-key",
      "uploads/stale-2.bin queued",
      "uploads/stale-never-uploaded.bin queued",
      "uploads/stale-with-object.bin queued",
    ]);
    const line = log.lines.find((l) => l.key === "uploads/stale-never-uploaded.bin")!;
    expect(line).toMatchObject({ level: "info", entry: "uploads", outcome: "queued" });
    expect(line.ageMs).toBeGreaterThanOrEqual(48 * 3_600_000);
    expect(typeof line.id).toBe("string");

    const next = await runPlugin(blob, {
      pool: db.pool,
      id: "uploads",
      options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
      retention: "24h",
    });
    expect(next).toMatchObject({ status: "succeeded", processed: 1 });
    expect(await remainingRows()).toEqual(["almost-stale", "fresh-pending", "stale-confirmed"]);
    expect((await drainBin()).map((i) => [i.payload["key"], i.status])).toEqual([["uploads/stale-locked.bin", "done"]]);
    expect(await listKeys(s3.client, "media")).toEqual([
      "uploads/almost-stale.bin",
      "uploads/fresh-pending.bin",
      "uploads/stale-confirmed.bin",
    ]);
  });

  it("an object delete the server refuses fails visibly in the bin and the object stays; the others go (faults injected by a proxy)", async () => {
    await seed([
      { name: "a-ok", hours: 30, object: true },
      { name: "b-denied", hours: 31, object: true },
      { name: "c-ok", hours: 32, object: true },
    ]);
    const proxy = await startS3Proxy({ upstream: s3.endpoint, deny: (key) => key.includes("b-denied") });
    try {
      const result = await runPlugin(blob, {
        pool: db.pool,
        id: "uploads",
        options: blobOptions(proxy.endpoint, "media", { uploads: UPLOADS }),
        retention: "24h",
        batchSize: 1,
      });
      expect(result).toMatchObject({ status: "succeeded", processed: 3, tables: { "public.uploads": 3, "objects queued": 3 } });
      const items = await drainBin(proxy.endpoint);
      expect(items.map((i) => [i.payload["key"], i.status])).toEqual([
        ["uploads/a-ok.bin", "done"],
        ["uploads/b-denied.bin", "failed"],
        ["uploads/c-ok.bin", "done"],
      ]);
      expect(items[1]!.lastError).toBe("HeadObject: Forbidden (403)");
    } finally {
      await proxy.stop();
    }
    expect(await remainingRows()).toEqual([]);
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/b-denied.bin"]);
  });

  it("a row the database refuses to delete (a foreign key, a raising trigger, a skipping trigger) keeps its object; the sweep goes on with the others", async () => {
    const ids = await seed([
      { name: "a", hours: 30, object: true },
      { name: "referenced", hours: 31, object: true },
      { name: "c", hours: 32, object: true },
      { name: "raises", hours: 33, object: true },
      { name: "skipped", hours: 34, object: true },
      { name: "e", hours: 35, object: true },
    ]);
    await db.pool.query("CREATE TABLE upload_refs (upload_id bigint NOT NULL REFERENCES uploads (id))");
    await db.pool.query("INSERT INTO upload_refs VALUES ($1)", [ids["referenced"]]);
    await db.pool.query(`
      CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$;
      CREATE OR REPLACE FUNCTION uploads_guard() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.name = 'raises' THEN RAISE EXCEPTION 'upload % is under legal hold', OLD.name; END IF;
        IF OLD.name = 'skipped' THEN RETURN NULL; END IF;
        RETURN OLD;
      END $$;
      CREATE TRIGGER uploads_guard BEFORE DELETE ON uploads FOR EACH ROW EXECUTE FUNCTION uploads_guard();
    `);
    const log = captureLogger();
    const result = await runPlugin(blob, {
      pool: db.pool,
      id: "uploads",
      options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
      retention: "24h",
      log,
    });
    expect(result).toMatchObject({ status: "succeeded", processed: 3, tables: { "public.uploads": 3, "objects queued": 3, failed: 3 } });
    expect(await remainingRows()).toEqual(["raises", "referenced", "skipped"]);
    expect(await queuedObjects()).toEqual(["uploads/a.bin", "uploads/c.bin", "uploads/e.bin"]);
    await drainBin();
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/raises.bin", "uploads/referenced.bin", "uploads/skipped.bin"]);
    const failed = Object.fromEntries(log.lines.filter((l) => l.outcome === "failed").map((l) => [String(l.key), String(l.error)]));
    expect(failed["uploads/referenced.bin"]).toContain("upload_refs");
    expect(failed["uploads/raises.bin"]).toBe("row: upload raises is under legal hold");
    expect(failed["uploads/skipped.bin"]).toBe("row: not deleted (a trigger skipped it)");
  });

  it("keeps the object of a stale pending row whose key a completed upload (or another pending row) still uses", async () => {
    await seed([
      { name: "stale-retry", hours: 30, key: "uploads/shared.bin" },
      { name: "completed", hours: 29, key: "uploads/shared.bin", object: true, uploaded: true },
      { name: "stale-twin-1", hours: 40, key: "uploads/twin.bin", object: true },
      { name: "fresh-twin", hours: 1, key: "uploads/twin.bin" },
      { name: "stale-alone", hours: 50, object: true },
    ]);
    const log = captureLogger();
    const result = await runPlugin(blob, {
      pool: db.pool,
      id: "uploads",
      options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
      retention: "24h",
      log,
    });
    expect(result).toMatchObject({ status: "succeeded", processed: 3, tables: { "public.uploads": 3, "objects queued": 1 } });
    expect(itemLines(log.lines)).toEqual(["uploads/shared.bin shared", "uploads/stale-alone.bin queued", "uploads/twin.bin shared"]);
    await drainBin();
    expect(await remainingRows()).toEqual(["completed", "fresh-twin"]);
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/shared.bin", "uploads/twin.bin"]);
  });

  it("a crash after the rows' commit (no bin worker ran) leaves the objects, deleted later by their bin items; a row re-created meanwhile keeps its object", async () => {
    await seed([
      { name: "x", hours: 30, object: true },
      { name: "y", hours: 31, object: true },
    ]);
    const result = await runPlugin(blob, {
      pool: db.pool,
      id: "uploads",
      options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
      retention: "24h",
    });
    expect(result).toMatchObject({ status: "succeeded", processed: 2 });
    // The process is gone here: rows committed, no object touched yet, the deletes wait in the bin.
    expect(await remainingRows()).toEqual([]);
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/x.bin", "uploads/y.bin"]);
    expect(await queuedObjects()).toEqual(["uploads/x.bin", "uploads/y.bin"]);
    // Before the bin runs, the application starts a new upload to the key of y.
    await seed([{ name: "y-again", hours: 0, key: "uploads/y.bin" }]);
    const items = await drainBin();
    expect(items.map((i) => [i.payload["key"], i.status, i.processed])).toEqual([
      ["uploads/x.bin", "done", 1],
      ["uploads/y.bin", "done", 0],
    ]);
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/y.bin"]);
  });

  it("dry run: counts and samples what would go, touches no row and no object", async () => {
    const ids = await seed([
      { name: "stale-1", hours: 30, object: true },
      { name: "stale-2", hours: 40 },
      { name: "fresh", hours: 2, object: true },
    ]);
    const result = await runPlugin(blob, {
      pool: db.pool,
      id: "uploads",
      options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
      retention: "24h",
      dryRun: true,
    });
    expect(result).toMatchObject({ status: "succeeded", dryRun: true, processed: 2 });
    expect([...(result.sample ?? [])].sort()).toEqual([ids["stale-1"], ids["stale-2"]].sort());
    expect(await remainingRows()).toEqual(["fresh", "stale-1", "stale-2"]);
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/fresh.bin", "uploads/stale-1.bin"]);
    expect(await queuedObjects()).toEqual([]);
  });

  it("stops before any change past a guard (maxRows), counting exactly", async () => {
    await seed([
      { name: "s1", hours: 30, object: true },
      { name: "s2", hours: 30 },
      { name: "s3", hours: 30 },
    ]);
    const result = await runPlugin(blob, {
      pool: db.pool,
      id: "uploads",
      options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
      retention: "24h",
      guard: { maxRows: 2 },
    });
    expect(result.status).toBe("guarded");
    expect(await remainingRows()).toEqual(["s1", "s2", "s3"]);
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/s1.bin"]);
  });

  it("refuses a table or column that does not exist, naming it (TARGET)", async () => {
    const run = (uploads: Record<string, string>) =>
      runPlugin(blob, { pool: db.pool, id: "uploads", options: blobOptions(s3.endpoint, "media", { uploads }), retention: "24h" });
    await expect(run({ ...UPLOADS, table: "upload" })).rejects.toMatchObject({
      code: "TARGET",
      message: 'plugins[uploads].options.uploads.table: table "upload" does not exist',
    });
    await expect(run({ ...UPLOADS, column: "Created_At" })).rejects.toMatchObject({
      code: "TARGET",
      message: 'plugins[uploads].options.uploads.column: column "Created_At" does not exist in public.uploads',
      hint: 'did you mean "created_at"?',
    });
    await expect(run({ ...UPLOADS, flag: "name" })).rejects.toMatchObject({
      code: "TARGET",
      message: 'plugins[uploads].options.uploads.flag: column "name" of public.uploads is text, expected boolean',
    });
  });
});

describe("uploads.key", () => {
  it("refuses a key that is not unique, is nullable, or is unique only in part (a partial index), naming options.uploads.key", async () => {
    await db.pool.query(`
      ALTER TABLE uploads ADD COLUMN token text, ADD COLUMN ref text NOT NULL DEFAULT '', ADD COLUMN slot text NOT NULL DEFAULT '';
      CREATE UNIQUE INDEX uploads_token_idx ON uploads (token);
      CREATE UNIQUE INDEX uploads_slot_pending_idx ON uploads (slot) WHERE NOT is_uploaded;
    `);
    await seed([{ name: "stale", hours: 30, object: true }]);
    const run = (key: string) =>
      runPlugin(blob, {
        pool: db.pool,
        id: "uploads",
        options: blobOptions(s3.endpoint, "media", { uploads: { ...UPLOADS, key } }),
        retention: "24h",
      });
    for (const key of ["ref", "token", "slot"]) {
      const error = (await run(key).catch((e: unknown) => e)) as { code?: string; message?: string };
      expect(["TARGET", "CONFIG"], `${key}: ${error.message}`).toContain(error.code);
      expect(error.message).toMatch(/^options\.uploads\.key: /);
    }
    expect(await remainingRows()).toEqual(["stale"]);
    expect(await run("name")).toMatchObject({ status: "succeeded", processed: 1 });
  });
});

describe("upload (cancel one now)", () => {
  it("cancels a fresh pending upload (row, then its object through the bin); refuses a completed one; an unknown id is done; a malformed id fails", async () => {
    const ids = await seed([
      { name: "pending", hours: 0, object: true },
      { name: "done", hours: 0, object: true, uploaded: true },
      { name: "other", hours: 0, object: true },
    ]);
    const items = await runBin(blob, {
      pool: db.pool,
      id: "uploads",
      options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
      retention: "24h",
      items: [
        { handler: "upload", payload: { id: ids["pending"] } },
        { handler: "upload", payload: { id: Number(ids["done"]) } },
        { handler: "upload", payload: { id: 999_999 } },
        { handler: "upload", payload: { id: "not-a-number" } },
      ],
    });
    expect(items.map((i) => [i.status, i.processed, i.attempts])).toEqual([
      ["done", 1, 1],
      ["failed", 0, 1],
      ["done", 0, 1],
      ["failed", 0, 1],
    ]);
    expect(items[1]!.lastError).toBe(`upload ${ids["done"]} of public.uploads is no longer pending (is_uploaded is true): nothing deleted`);
    expect(items[3]!.lastError).toBe('upload id "not-a-number" is not a valid int8 (public.uploads.id)');
    expect(await remainingRows()).toEqual(["done", "other"]);
    // The object's delete went to the bin with the row's; runBin's worker may already have taken it.
    await drainBin();
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/done.bin", "uploads/other.bin"]);
  });

  it("is refused at enqueue by an entry without `uploads`", async () => {
    const entry = testEntry(blob, { pool: db.pool, id: "plain", options: blobOptions(s3.endpoint, "media") });
    await expect(enqueue(db.pool, "plain.upload", { id: 1 }, binKinds([entry]))).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for plain.upload: this entry has no `uploads` option: there is no uploads table to cancel an upload in",
    });
  });
});

describe("doctor", () => {
  it("reports credentials, the bucket, its versioning and the uploads index", async () => {
    const options = blobOptions(s3.endpoint, "media", { uploads: UPLOADS });
    const withIndex = await checkPlugin(blob, { pool: db.pool, id: "uploads", options, retention: "24h" });
    expect(withIndex.map((d) => `${d.level}: ${d.message.replace(s3.endpoint, "<endpoint>")}`)).toEqual([
      "ok: credentials found (access key …RVER)",
      "ok: bucket s3://media at <endpoint> reachable, credentials accepted",
      "ok: s3://media at <endpoint> is unversioned (the bucket says versioning was never enabled)",
      "ok: public.uploads.created_at is indexed (uploads_pending_created_idx)",
      "ok: public.uploads.object_key is indexed (uploads_object_key_idx)",
    ]);
    await db.pool.query("DROP INDEX uploads_pending_created_idx; DROP INDEX uploads_object_key_idx");
    const withoutIndex = await checkPlugin(blob, { pool: db.pool, id: "uploads", options, retention: "24h" });
    expect(withoutIndex.slice(-2)).toEqual([
      {
        level: "warn",
        message: "public.uploads.created_at has no index: every uploads sweep scans the whole table",
        hint: 'CREATE INDEX CONCURRENTLY ON "public"."uploads" ("created_at") WHERE "is_uploaded" = false;',
      },
      {
        level: "warn",
        message:
          "public.uploads.object_key has no index: each sweep batch and each object delete scans the whole table for other rows using the key",
        hint: 'CREATE INDEX CONCURRENTLY ON "public"."uploads" ("object_key");',
      },
    ]);
  });

  it("describes the entry as its bucket (and uploads table)", () => {
    const DESCRIBED = {
      bucket: "media",
      region: "us-east-1",
      forcePathStyle: false,
      concurrency: 4,
      versions: "auto",
      requestTimeout: "30s",
    } as const;
    expect(blob.describe!({ ...DESCRIBED, uploads: { ...UPLOADS, timeZone: "UTC" } })).toBe("s3://media + uploads uploads");
    expect(blob.describe!(DESCRIBED)).toBe("s3://media");
  });

  it("uses a retention only with `uploads`", () => {
    const base = { bucket: "b", region: "us-east-1", forcePathStyle: false, concurrency: 4, versions: "auto" as const };
    const uses = blob.usesRetention as (o: typeof base & { uploads?: typeof UPLOADS }) => boolean;
    expect(uses(base)).toBe(false);
    expect(uses({ ...base, uploads: UPLOADS })).toBe(true);
  });
});

describe("uploads sweep: a clock without time zone", () => {
  it("reads a `timestamp` column in `timeZone` (default UTC), whatever the database's TimeZone (Asia/Tokyo here)", async () => {
    const tz = await createTestDatabase("blob-uploads-tz");
    try {
      await tz.pool.query(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'Asia/Tokyo'); END $$`);
      // Connections opened from now on get the database's new default.
      const pool = new pg.Pool({ connectionString: tz.url, max: 4 });
      try {
        const { rows } = await pool.query<{ tz: string }>("SELECT current_setting($1) AS tz", ["TimeZone"]);
        expect(rows[0]!.tz).toBe("Asia/Tokyo");
        await pool.query(`
          CREATE TABLE uploads (id bigserial PRIMARY KEY, name text NOT NULL, object_key text, is_uploaded boolean NOT NULL DEFAULT false,
                                created_at timestamp NOT NULL);
          CREATE TABLE uploads_ny (LIKE uploads INCLUDING ALL);
          -- The applications write wall-clock times: one in UTC, one in New York.
          INSERT INTO uploads (name, created_at) VALUES
            ('stale-25h', (now() AT TIME ZONE 'UTC') - interval '25 hours'),
            ('fresh-23h', (now() AT TIME ZONE 'UTC') - interval '23 hours'),
            ('fresh-1h', (now() AT TIME ZONE 'UTC') - interval '1 hour');
          INSERT INTO uploads_ny (name, created_at) VALUES
            ('stale-25h', (now() AT TIME ZONE 'America/New_York') - interval '25 hours'),
            ('fresh-20h', (now() AT TIME ZONE 'America/New_York') - interval '20 hours');
        `);
        const log = captureLogger();
        const utc = await runPlugin(blob, {
          pool,
          id: "tz",
          options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
          retention: "24h",
          log,
        });
        expect(utc).toMatchObject({ status: "succeeded", processed: 1 });
        const left = async (table: string) =>
          (await pool.query<{ name: string }>(`SELECT name FROM ${table} ORDER BY name`)).rows.map((r) => r.name);
        expect(await left("uploads")).toEqual(["fresh-1h", "fresh-23h"]);
        const line = log.lines.find((l) => l.outcome === "no-key")!;
        expect(Math.round(Number(line.ageMs) / 3_600_000)).toBe(25);

        const ny = await runPlugin(blob, {
          pool,
          id: "tz-ny",
          options: blobOptions(s3.endpoint, "media", { uploads: { ...UPLOADS, table: "uploads_ny", timeZone: "America/New_York" } }),
          retention: "24h",
        });
        expect(ny).toMatchObject({ status: "succeeded", processed: 1 });
        expect(await left("uploads_ny")).toEqual(["fresh-20h"]);

        await expect(
          runPlugin(blob, {
            pool,
            id: "tz-bad",
            options: blobOptions(s3.endpoint, "media", { uploads: { ...UPLOADS, timeZone: "Mars/Olympus_Mons" } }),
            retention: "24h",
          }),
        ).rejects.toMatchObject({
          code: "CONFIG",
          message: 'plugins[tz-bad].options.uploads.timeZone: "Mars/Olympus_Mons" is not a time zone PostgreSQL knows',
        });
      } finally {
        await pool.end();
      }
    } finally {
      await tz.drop();
    }
  });
});
