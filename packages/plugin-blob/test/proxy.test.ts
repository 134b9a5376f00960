/**
 * What s3rver cannot do by itself, through the HTTP proxy of s3-proxy.ts:
 * versioned buckets (emulated) and S3 faults (R3, injected). The plugin talks
 * to the proxy exactly as it would to S3; s3rver behind it stores the objects.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { PurgerEventEmitter } from "@purger/core/host";
import { checkPlugin, createTestDatabase, runBin, type TestDatabase } from "@purger/core/testing";
import blob from "../src/index.js";
import { blobOptions, listKeys, putObjects, s3Client, seedObjects, spreadKeys, startTestS3, type TestS3 } from "./fixtures.js";
import { startS3Proxy, type S3Proxy } from "./s3-proxy.js";

let db: TestDatabase;
let s3: TestS3;

beforeAll(async () => {
  [db, s3] = await Promise.all([createTestDatabase("blob-proxy"), startTestS3(["versioned", "faulty", "neighbour", "lying"])]);
});

afterAll(async () => {
  await Promise.all([db?.drop(), s3?.stop()]);
});

/** Versions and delete markers the proxy holds for keys under `prefix` (all keys without one). */
function versionsUnder(proxy: S3Proxy, bucket: string, prefix = ""): string[] {
  const found: string[] = [];
  for (const [key, records] of proxy.versions.get(bucket) ?? []) {
    if (key.startsWith(prefix)) for (const r of records) found.push(`${key}@${r.marker ? "marker" : r.versionId}`);
  }
  return found.sort();
}

describe("versioned bucket (versioning emulated by a proxy)", () => {
  it("deletes every version and delete marker under the prefix, over several version pages, and nothing else", async () => {
    const proxy = await startS3Proxy({ upstream: s3.endpoint, versioning: true });
    const client = s3Client(proxy.endpoint);
    try {
      // 900 keys: 800 with three versions, 100 whose latest entry is a delete marker — 2 600 entries, three pages of 999.
      // The emulated server state is set directly (thousands of PUTs through the proxy would only cost time).
      const keys = spreadKeys("teams/42/", 900, 10);
      await seedObjects(s3, "versioned", keys.slice(100));
      const records = proxy.versions.set("versioned", new Map()).get("versioned")!;
      keys.forEach((key, i) =>
        records.set(
          key,
          i < 100
            ? [
                { versionId: `a${i}`, marker: false },
                { versionId: `m${i}`, marker: true },
              ]
            : [0, 1, 2].map((n) => ({ versionId: `${"abc"[n]}${i}`, marker: false })),
        ),
      );
      // Outside the prefix, through the proxy's real paths: two versions of a sibling, a deleted one (marker), and an object from before versioning.
      await putObjects(client, "versioned", ["teams/420/a"], 1);
      await putObjects(client, "versioned", ["teams/420/a", "teams/420/b"], 1);
      await client.send(new DeleteObjectCommand({ Bucket: "versioned", Key: "teams/420/b" }));
      await putObjects(s3.client, "versioned", ["teams/43/old"]);
      const outside = versionsUnder(proxy, "versioned", "teams/420/");
      expect(outside).toHaveLength(4);
      expect(versionsUnder(proxy, "versioned", "teams/42/")).toHaveLength(2600);

      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "versioned",
        options: blobOptions(proxy.endpoint, "versioned"),
        items: [{ handler: "prefix", payload: { prefix: "teams/42/" } }],
        waitMs: 120_000,
      });

      expect(item).toMatchObject({ status: "done", processed: 2600 });
      expect(versionsUnder(proxy, "versioned", "teams/42/")).toEqual([]);
      expect(versionsUnder(proxy, "versioned")).toEqual(outside);
      expect(await listKeys(s3.client, "versioned")).toEqual(["teams/420/a", "teams/43/old"]);
      // It asked the bucket (versions: auto) and listed versions (three pages, then the final pass), never plain objects.
      expect(proxy.stats.listVersionRequests.length).toBeGreaterThanOrEqual(4);
      expect(proxy.stats.listRequests).toEqual([]);
    } finally {
      client.destroy();
      await proxy.stop();
    }
  }, 180_000);

  it("deletes every version of one object with <id>.object, and only that key", async () => {
    const proxy = await startS3Proxy({ upstream: s3.endpoint, versioning: true });
    const client = s3Client(proxy.endpoint);
    try {
      await putObjects(client, "versioned", ["one/a.txt", "one/a.txt", "one/a.txt.bak"], 1);
      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "versioned",
        options: blobOptions(proxy.endpoint, "versioned", { versions: true }),
        items: [{ handler: "object", payload: { key: "one/a.txt" } }],
      });
      expect(item).toMatchObject({ status: "done", processed: 2 });
      expect(versionsUnder(proxy, "versioned", "one/").map((v) => v.split("@")[0])).toEqual(["one/a.txt.bak"]);
    } finally {
      client.destroy();
      await proxy.stop();
    }
  });

  it("with versions: false, deletes current objects only (leaving delete markers, as asked)", async () => {
    const proxy = await startS3Proxy({ upstream: s3.endpoint, versioning: true });
    const client = s3Client(proxy.endpoint);
    try {
      await putObjects(client, "versioned", ["plain/a", "plain/b"], 1);
      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "versioned",
        options: blobOptions(proxy.endpoint, "versioned", { versions: false }),
        items: [{ handler: "prefix", payload: { prefix: "plain/" } }],
      });
      expect(item).toMatchObject({ status: "done", processed: 2 });
      expect(await listKeys(s3.client, "versioned", "plain/")).toEqual([]);
      expect(proxy.stats.listVersionRequests).toEqual([]);
      expect(versionsUnder(proxy, "versioned", "plain/").filter((v) => v.endsWith("@marker"))).toHaveLength(2);
    } finally {
      client.destroy();
      await proxy.stop();
    }
  });
});

describe("versioned bucket: delete markers last (versioning emulated, per-key errors injected by a proxy)", () => {
  it("keeps a key's delete marker while one of its versions fails to delete: the object never becomes visible again", async () => {
    const proxy = await startS3Proxy({
      upstream: s3.endpoint,
      versioning: true,
      keyError: (_key, versionId) => versionId === "a1" || versionId === "a3",
    });
    try {
      const records = proxy.versions.set("versioned", new Map()).get("versioned")!;
      // Deleted objects: an old version hidden by a delete marker (s3rver holds no current object for them).
      for (const [key, n] of [
        ["gone/k1", 1],
        ["gone/k2", 2],
        ["solo/k3", 3],
      ] as const) {
        records.set(key, [
          { versionId: `a${n}`, marker: false },
          { versionId: `m${n}`, marker: true },
        ]);
      }
      const items = await runBin(blob, {
        pool: db.pool,
        id: "markers",
        options: blobOptions(proxy.endpoint, "versioned", { versions: true }),
        items: [
          { handler: "prefix", payload: { prefix: "gone/" } },
          { handler: "object", payload: { key: "solo/k3" } },
        ],
        maxAttempts: 1,
        waitMs: 120_000,
      });
      expect(items.map((i) => i.status)).toEqual(["failed", "failed"]);
      expect(items[0]!.lastError).toContain("gone/k1 (InternalError: injected per-key error)");
      // The failing version and the marker hiding it stay. The page's other markers wait for the next attempt too
      // (k2's version is gone: its marker hides nothing, and removing it later is safe).
      expect(versionsUnder(proxy, "versioned", "gone/")).toEqual(["gone/k1@a1", "gone/k1@marker", "gone/k2@marker"]);
      expect(versionsUnder(proxy, "versioned", "solo/")).toEqual(["solo/k3@a3", "solo/k3@marker"]);
      expect(await listKeys(s3.client, "versioned", "gone/")).toEqual([]);
      expect(await listKeys(s3.client, "versioned", "solo/")).toEqual([]);
    } finally {
      await proxy.stop();
    }
  }, 150_000);
});

describe("prefix: done only when empty (DeleteObjects answers injected by a proxy)", () => {
  it("deletes again a key the server reported deleted but kept, counting it once", async () => {
    await putObjects(s3.client, "lying", ["lying/a", "lying/b", "lying/once", "lying/c", "lying/d"]);
    let swallowed = 0;
    const proxy = await startS3Proxy({ upstream: s3.endpoint, swallow: (key) => key === "lying/once" && swallowed++ === 0 });
    try {
      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "lying",
        options: blobOptions(proxy.endpoint, "lying"),
        items: [{ handler: "prefix", payload: { prefix: "lying/" } }],
      });
      expect(swallowed).toBe(2);
      expect(item).toMatchObject({ status: "done", processed: 5 });
    } finally {
      await proxy.stop();
    }
    expect(await listKeys(s3.client, "lying", "lying/")).toEqual([]);
  });

  it("fails visibly, naming the key, when the server keeps a key it reports deleted; never done while it remains", async () => {
    await putObjects(s3.client, "lying", ["stubborn/a", "stubborn/always", "stubborn/b"]);
    const proxy = await startS3Proxy({ upstream: s3.endpoint, swallow: (key) => key === "stubborn/always" });
    try {
      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "stubborn",
        options: blobOptions(proxy.endpoint, "lying"),
        items: [{ handler: "prefix", payload: { prefix: "stubborn/" } }],
        maxAttempts: 1,
      });
      expect(item).toMatchObject({ status: "failed", processed: 2 });
      expect(item!.lastError).toBe(
        'prefix "stubborn/": 1 object(s) still listed after 3 passes that deleted them (stubborn/always): the server answered that they were deleted',
      );
    } finally {
      await proxy.stop();
    }
    expect(await listKeys(s3.client, "lying", "stubborn/")).toEqual(["stubborn/always"]);
  });
});

describe("versions: auto (answers injected by a proxy)", () => {
  it("counts a server that cannot answer GetBucketVersioning (501) as unversioned, and says so in doctor", async () => {
    const proxy = await startS3Proxy({ upstream: s3.endpoint, versioningError: { status: 501, code: "NotImplemented" } });
    try {
      await putObjects(s3.client, "neighbour", ["auto/a", "auto/b"]);
      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "auto",
        options: blobOptions(proxy.endpoint, "neighbour"),
        items: [{ handler: "prefix", payload: { prefix: "auto/" } }],
      });
      expect(item).toMatchObject({ status: "done", processed: 2 });
      const diagnostics = await checkPlugin(blob, { pool: db.pool, id: "auto", options: blobOptions(proxy.endpoint, "neighbour") });
      expect(diagnostics[2]!.message.replace(proxy.endpoint, "<endpoint>")).toBe(
        "s3://neighbour at <endpoint> is unversioned (the server cannot answer GetBucketVersioning (NotImplemented (501): injected by the test proxy): counted as unversioned)",
      );
    } finally {
      await proxy.stop();
    }
  });

  it("refuses to guess when the versioning state may not be read (403): a visible failure, nothing deleted", async () => {
    const proxy = await startS3Proxy({ upstream: s3.endpoint, versioningError: { status: 403, code: "AccessDenied" } });
    try {
      await putObjects(s3.client, "neighbour", ["denied/a"]);
      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "denied",
        options: blobOptions(proxy.endpoint, "neighbour"),
        items: [{ handler: "prefix", payload: { prefix: "denied/" } }],
        maxAttempts: 1,
      });
      expect(item!.status).toBe("failed");
      expect(item!.lastError).toBe(
        `s3://neighbour at ${proxy.endpoint}: not allowed to read the bucket's versioning state (AccessDenied (403): injected by the test proxy)`,
      );
      expect(await listKeys(s3.client, "neighbour", "denied/")).toEqual(["denied/a"]);
    } finally {
      await proxy.stop();
    }
  });
});

describe("R3: S3 faults (faults injected by a proxy)", () => {
  it("deletes every object under the prefix through 10 % failed requests and per-key DeleteObjects errors, touching nothing outside it", async () => {
    const target = spreadKeys("teams/42/", 2500);
    const kept = [...spreadKeys("teams/420/", 30), "teams/42", "teams/41/x"];
    await Promise.all([seedObjects(s3, "faulty", [...target, ...kept]), seedObjects(s3, "neighbour", spreadKeys("teams/42/", 20))]);
    const proxy = await startS3Proxy({ upstream: s3.endpoint, faults: { rate: 0.1, keyErrorRate: 0.05, seed: 7 } });
    try {
      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "faulty",
        options: blobOptions(proxy.endpoint, "faulty", { concurrency: 4 }),
        items: [{ handler: "prefix", payload: { prefix: "teams/42/" } }],
        waitMs: 180_000,
      });
      expect(item).toMatchObject({ status: "done", processed: 2500, lastError: null });
      expect(proxy.stats.faults).toBeGreaterThan(0);
      expect(proxy.stats.keyErrors).toBeGreaterThan(0);
      expect(await listKeys(s3.client, "faulty")).toEqual([...kept].sort());
      expect(await listKeys(s3.client, "neighbour", "teams/42/")).toHaveLength(20);
      const touched = [...(proxy.deleteRequested.get("faulty") ?? [])];
      expect(touched.filter((k) => !k.startsWith("teams/42/"))).toEqual([]);
      expect(proxy.deleteRequested.has("neighbour")).toBe(false);
    } finally {
      await proxy.stop();
    }
  }, 240_000);

  it("fails the attempt while S3 keeps failing past the request retries; the bin retries it later and it finishes once S3 is back", async () => {
    await seedObjects(s3, "faulty", spreadKeys("outage/", 50));
    const proxy = await startS3Proxy({ upstream: s3.endpoint, faults: { rate: 1 } });
    const emitter = new PurgerEventEmitter();
    const failures: { attempt: number; final: boolean; error: string }[] = [];
    emitter.on("bin:item:fail", (e) => {
      failures.push({ attempt: e.attempt, final: e.final, error: e.error });
      proxy.setFaults(undefined); // S3 is back
    });
    try {
      const [item] = await runBin(blob, {
        pool: db.pool,
        id: "outage",
        options: blobOptions(proxy.endpoint, "faulty", { concurrency: 2 }),
        items: [{ handler: "prefix", payload: { prefix: "outage/" } }],
        maxAttempts: 3,
        events: emitter,
        waitMs: 120_000,
      });
      expect(item).toMatchObject({ status: "done", attempts: 2, processed: 50 });
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({ attempt: 1, final: false });
      expect(failures[0]!.error).toMatch(
        /InternalError|SlowDown|ServiceUnavailable|Service Unavailable|Internal Server Error|socket hang up|ECONNRESET/,
      );
      expect(await listKeys(s3.client, "faulty", "outage/")).toEqual([]);
    } finally {
      await proxy.stop();
    }
  }, 180_000);
});
