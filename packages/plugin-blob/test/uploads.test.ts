/**
 * Stale pending uploads (SPEC §1 scenario 3): the scheduled sweep through the
 * real run loop (`runPlugin`), `<id>.upload` through the real bin, `purger
 * doctor`'s checks — real PostgreSQL, real s3rver.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { binKinds, enqueue } from "@purger/core";
import { checkPlugin, createTestDatabase, runBin, runPlugin, testEntry, type TestDatabase } from "@purger/core/testing";
import blob from "../src/index.js";
import { captureLogger, type Line } from "./bin-worker.js";
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
    DROP TABLE IF EXISTS upload_refs, uploads;
    CREATE TABLE uploads (
      id bigserial PRIMARY KEY,
      name text NOT NULL UNIQUE,
      object_key text,
      is_uploaded boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL
    );
    CREATE INDEX uploads_pending_created_idx ON uploads (created_at) WHERE NOT is_uploaded;
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
  it("deletes stale pending uploads (row + object) and leaves fresh, confirmed and locked ones; the locked one goes next time", async () => {
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
      expect(result).toMatchObject({ status: "succeeded", processed: 4, tables: { "public.uploads": 4, objects: 2 } });
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    expect(await remainingRows()).toEqual(["almost-stale", "fresh-pending", "stale-confirmed", "stale-locked"]);
    expect(await listKeys(s3.client, "media")).toEqual([
      "uploads/almost-stale.bin",
      "uploads/fresh-pending.bin",
      "uploads/stale-confirmed.bin",
      "uploads/stale-locked.bin",
    ]);
    expect(await listKeys(s3.client, "media-other")).toEqual(["uploads/stale-2.bin"]);
    expect(itemLines(log.lines)).toEqual([
      "null no-key",
      "uploads/stale-2.bin deleted",
      "uploads/stale-never-uploaded.bin missing",
      "uploads/stale-with-object.bin deleted",
    ]);
    const line = log.lines.find((l) => l.key === "uploads/stale-never-uploaded.bin")!;
    expect(line).toMatchObject({ level: "info", entry: "uploads", outcome: "missing" });
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
    expect(await listKeys(s3.client, "media")).toEqual([
      "uploads/almost-stale.bin",
      "uploads/fresh-pending.bin",
      "uploads/stale-confirmed.bin",
    ]);
  });

  it("logs a failing item and goes on with the others; it stays for the next run (faults injected by a proxy)", async () => {
    await seed([
      { name: "a-ok", hours: 30, object: true },
      { name: "b-denied", hours: 31, object: true },
      { name: "c-ok", hours: 32, object: true },
    ]);
    const proxy = await startS3Proxy({ upstream: s3.endpoint, deny: (key) => key.includes("b-denied") });
    const log = captureLogger();
    try {
      const result = await runPlugin(blob, {
        pool: db.pool,
        id: "uploads",
        options: blobOptions(proxy.endpoint, "media", { uploads: UPLOADS }),
        retention: "24h",
        batchSize: 1,
        log,
      });
      expect(result).toMatchObject({ status: "succeeded", processed: 2, tables: { "public.uploads": 2, objects: 2, failed: 1 } });
    } finally {
      await proxy.stop();
    }
    expect(await remainingRows()).toEqual(["b-denied"]);
    expect(await listKeys(s3.client, "media")).toEqual(["uploads/b-denied.bin"]);
    const failed = log.lines.find((l) => l.outcome === "failed")!;
    expect(failed).toMatchObject({ level: "warn", key: "uploads/b-denied.bin" });
    expect(failed.error).toBe("object uploads/b-denied.bin: HeadObject: Forbidden (403)");
  });

  it("logs a row the database refuses to delete (a foreign key) as failed and deletes the others", async () => {
    const ids = await seed([
      { name: "a", hours: 30 },
      { name: "referenced", hours: 31 },
      { name: "c", hours: 32 },
    ]);
    await db.pool.query("CREATE TABLE upload_refs (upload_id bigint NOT NULL REFERENCES uploads (id))");
    await db.pool.query("INSERT INTO upload_refs VALUES ($1)", [ids["referenced"]]);
    const log = captureLogger();
    const result = await runPlugin(blob, {
      pool: db.pool,
      id: "uploads",
      options: blobOptions(s3.endpoint, "media", { uploads: UPLOADS }),
      retention: "24h",
      log,
    });
    expect(result).toMatchObject({ status: "succeeded", processed: 2, tables: { failed: 1 } });
    expect(await remainingRows()).toEqual(["referenced"]);
    expect(String(log.lines.find((l) => l.outcome === "failed")!.error)).toContain("upload_refs");
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

describe("upload (cancel one now)", () => {
  it("cancels a fresh pending upload (row + object); refuses a completed one; an unknown id is done; a malformed id fails", async () => {
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
    ]);
    await db.pool.query("DROP INDEX uploads_pending_created_idx");
    const withoutIndex = await checkPlugin(blob, { pool: db.pool, id: "uploads", options, retention: "24h" });
    expect(withoutIndex.at(-1)).toEqual({
      level: "warn",
      message: "public.uploads.created_at has no index: every uploads sweep scans the whole table",
      hint: 'CREATE INDEX CONCURRENTLY ON "public"."uploads" ("created_at") WHERE "is_uploaded" = false;',
    });
  });

  it("describes the entry as its bucket (and uploads table)", () => {
    expect(
      blob.describe!({ bucket: "media", region: "us-east-1", forcePathStyle: false, concurrency: 4, versions: "auto", uploads: UPLOADS }),
    ).toBe("s3://media + uploads uploads");
    expect(blob.describe!({ bucket: "media", region: "us-east-1", forcePathStyle: false, concurrency: 4, versions: "auto" })).toBe(
      "s3://media",
    );
  });

  it("uses a retention only with `uploads`", () => {
    const base = { bucket: "b", region: "us-east-1", forcePathStyle: false, concurrency: 4, versions: "auto" as const };
    const uses = blob.usesRetention as (o: typeof base & { uploads?: typeof UPLOADS }) => boolean;
    expect(uses(base)).toBe(false);
    expect(uses({ ...base, uploads: UPLOADS })).toBe(true);
  });
});
