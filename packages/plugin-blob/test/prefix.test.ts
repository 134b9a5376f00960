/**
 * `<id>.prefix` and `<id>.object` through the real bin (enqueue → worker →
 * handler) against a real PostgreSQL and a real s3rver.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binKinds, enqueue, migrate, PurgerEventEmitter } from "@purger/core/host";
import { createTestDatabase, runBin, testEntry, startBinWorker, type TestDatabase } from "@purger/core/testing";
import blob from "../src/index.js";
import { blobOptions, listKeys, putObjects, seedObjects, spreadKeys, startTestS3, type TestS3 } from "./fixtures.js";
import { startS3Proxy } from "./s3-proxy.js";

let db: TestDatabase;
let s3: TestS3;

beforeAll(async () => {
  [db, s3] = await Promise.all([createTestDatabase("blob-prefix"), startTestS3(["fleet", "backups", "resume", "slices"])]);
});

afterAll(async () => {
  await Promise.all([db?.drop(), s3?.stop()]);
});

describe("prefix", () => {
  it("deletes every object under teams/42/ (2 600 objects, three list pages) and nothing in teams/420/, beside it, or in another bucket", async () => {
    const target = spreadKeys("teams/42/", 2600);
    const kept = [...spreadKeys("teams/420/", 40), "teams/42", "teams/4/x", "teams/41/a", "teams/43/b", "team/42/x", "teams/42-old/y"];
    const otherBucket = spreadKeys("teams/42/", 50);
    await Promise.all([seedObjects(s3, "fleet", [...target, ...kept]), seedObjects(s3, "backups", otherBucket)]);
    const events = new PurgerEventEmitter();
    let progress = 0;
    events.on("bin:item:progress", (e) => (progress = Math.max(progress, e.done)));

    const [item] = await runBin(blob, {
      pool: db.pool,
      id: "blobs",
      options: blobOptions(s3.endpoint, "fleet"),
      items: [{ handler: "prefix", payload: { prefix: "teams/42/" } }],
      events,
    });

    expect(item).toMatchObject({ status: "done", processed: 2600, lastError: null });
    expect(progress).toBe(2600);
    expect(await listKeys(s3.client, "fleet")).toEqual([...kept].sort());
    expect(await listKeys(s3.client, "backups")).toEqual([...otherBucket].sort());
  }, 180_000);

  it("refuses a prefix without a trailing slash when purger enqueues it", async () => {
    const entry = testEntry(blob, { pool: db.pool, id: "blobs", options: blobOptions(s3.endpoint, "fleet") });
    const kinds = binKinds([entry]);
    await expect(enqueue(db.pool, "blobs.prefix", { prefix: "teams/42" }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message:
        'bin payload for blobs.prefix: prefix "teams/42" does not end in "/": it would also delete siblings such as "teams/420/…"; write "teams/42/" to delete that folder, or add "exact": true to delete every key starting with "teams/42"',
    });
    await expect(enqueue(db.pool, "blobs.prefix", { prefix: "" }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message: "bin payload for blobs.prefix: /prefix must NOT have fewer than 1 characters",
    });
    await expect(enqueue(db.pool, "blobs.prefix", { prefix: "a/", recursive: true }, kinds)).rejects.toMatchObject({ code: "PAYLOAD" });
  });

  it("fails at once, touching nothing, a prefix without a slash enqueued from SQL (which cannot check it)", async () => {
    await putObjects(s3.client, "fleet", ["teams/77/a", "teams/770/b"]);
    const worker = await startBinWorker(blob, { pool: db.pool, id: "blobs", options: blobOptions(s3.endpoint, "fleet") });
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT purger.enqueue('blobs.prefix', '{"prefix":"teams/77"}'::jsonb)::text AS id`,
    );
    await worker.start();
    try {
      const [item] = await worker.settle([rows[0]!.id]);
      expect(item).toMatchObject({ status: "failed", attempts: 1 });
      expect(item!.lastError).toContain('prefix "teams/77" does not end in "/"');
    } finally {
      await worker.stop();
    }
    expect(await listKeys(s3.client, "fleet", "teams/77")).toEqual(["teams/77/a", "teams/770/b"]);
  });

  it("with exact: true, deletes every key that starts with the prefix as written", async () => {
    const logs = ["logs/2024-01-01.gz", "logs/2024-01-31.gz", "logs/2024-01/x.gz"];
    const kept = ["logs/2024-02-01.gz", "logs/2024-0", "logs/2023-01-01.gz"];
    await putObjects(s3.client, "fleet", [...logs, ...kept]);
    const [item] = await runBin(blob, {
      pool: db.pool,
      id: "blobs",
      options: blobOptions(s3.endpoint, "fleet"),
      items: [{ handler: "prefix", payload: { prefix: "logs/2024-01", exact: true } }],
    });
    expect(item).toMatchObject({ status: "done", processed: 3 });
    expect(await listKeys(s3.client, "fleet", "logs/")).toEqual([...kept].sort());
  });

  it("handles a prefix with nothing under it, and keys with unicode, spaces and XML characters", async () => {
    const odd = ["odd/ünïcødé/ß.txt", "odd/with space/a&b<c>.txt", "odd/emoji/🚀.bin", "odd/quote/\"'.txt"];
    await putObjects(s3.client, "fleet", odd);
    const items = await runBin(blob, {
      pool: db.pool,
      id: "blobs",
      options: blobOptions(s3.endpoint, "fleet"),
      items: [
        { handler: "prefix", payload: { prefix: "nothing/here/" } },
        { handler: "prefix", payload: { prefix: "odd/" } },
      ],
    });
    expect(items.map((i) => [i.status, i.processed])).toEqual([
      ["done", 0],
      ["done", 4],
    ]);
    expect(await listKeys(s3.client, "fleet", "odd/")).toEqual([]);
  });

  it("continues from the checkpoint an earlier attempt saved", async () => {
    const keys = spreadKeys("robots/9/", 1500).sort();
    // An earlier attempt deleted everything up to the 600th key, saved its checkpoint, and its process died.
    await seedObjects(s3, "resume", keys.slice(600));
    const proxy = await startS3Proxy({ upstream: s3.endpoint });
    const worker = await startBinWorker(blob, { pool: db.pool, id: "resumed", options: blobOptions(proxy.endpoint, "resume") });
    try {
      const id = await worker.enqueue("prefix", { prefix: "robots/9/" });
      await db.pool.query("UPDATE purger.bin SET checkpoint = $2, processed = 600 WHERE id = $1", [
        id,
        { startAfter: keys[599], deleted: 600 },
      ]);
      await worker.start();
      const [item] = await worker.settle([id]);
      expect(item).toMatchObject({ status: "done", processed: 1500 });
      // The first listing started after the checkpoint's key; the last one, from the start, found nothing left.
      expect(proxy.stats.listRequests[0]!.get("start-after")).toBe(keys[599]);
      expect(proxy.stats.listRequests.at(-1)!.get("start-after")).toBeNull();
    } finally {
      await worker.stop();
      await proxy.stop();
    }
    expect(await listKeys(s3.client, "resume")).toEqual([]);
  }, 120_000);

  it("stops at the end of each slice (timeout) and continues from its checkpoint in the next", async () => {
    const keys = spreadKeys("teams/5/", 3000);
    await seedObjects(s3, "slices", keys);
    const proxy = await startS3Proxy({ upstream: s3.endpoint });
    const worker = await startBinWorker(blob, {
      pool: db.pool,
      id: "sliced",
      options: blobOptions(proxy.endpoint, "slices", { concurrency: 2 }),
      timeout: "400ms",
    });
    const starts: number[] = [];
    worker.events.on("bin:item:start", (e) => starts.push(e.attempt));
    try {
      const id = await worker.enqueue("prefix", { prefix: "teams/5/" });
      await worker.start();
      const [item] = await worker.settle([id]);
      expect(item).toMatchObject({ status: "done", processed: 3000, attempts: 1 });
    } finally {
      await worker.stop();
      await proxy.stop();
    }
    // Several slices, each counted as the same attempt; later slices resumed after a saved key.
    expect(starts.length).toBeGreaterThan(1);
    expect(new Set(starts)).toEqual(new Set([1]));
    expect(proxy.stats.listRequests.filter((q) => q.get("start-after") !== null).length).toBeGreaterThan(1);
    expect(await listKeys(s3.client, "slices")).toEqual([]);
  }, 180_000);
});

describe("object", () => {
  it("deletes one object; a missing one is success with nothing processed", async () => {
    await putObjects(s3.client, "fleet", ["single/a.txt", "single/a.txt.bak"]);
    const items = await runBin(blob, {
      pool: db.pool,
      id: "blobs",
      options: blobOptions(s3.endpoint, "fleet"),
      items: [
        { handler: "object", payload: { key: "single/a.txt" } },
        { handler: "object", payload: { key: "single/missing.txt" } },
      ],
    });
    expect(items.map((i) => [i.status, i.processed])).toEqual([
      ["done", 1],
      ["done", 0],
    ]);
    expect(await listKeys(s3.client, "fleet", "single/")).toEqual(["single/a.txt.bak"]);
  });
});

describe("prepare", () => {
  it("says which bucket does not exist (TARGET), before any item is handled", async () => {
    await migrate(db.pool, { workerSchema: "purger_worker" });
    const [item] = await runBin(blob, {
      pool: db.pool,
      id: "nobucket",
      options: blobOptions(s3.endpoint, "no-such-bucket"),
      items: [{ handler: "object", payload: { key: "a" } }],
      maxAttempts: 1,
    });
    expect(item).toMatchObject({ status: "failed", lastError: `bucket s3://no-such-bucket at ${s3.endpoint} does not exist` });
  });
});
