/**
 * `allowPrefix`: an entry's bin items may only name prefixes (and objects
 * under prefixes) that match it — refused at enqueue, and again when
 * handled (an item enqueued from SQL was never validated). Real bin, real
 * PostgreSQL, real s3rver.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binKinds, enqueue } from "@purger/core/host";
import { createTestDatabase, testEntry, startBinWorker, type TestDatabase } from "@purger/core/testing";
import blob from "../src/index.js";
import { blobOptions, listKeys, putObjects, startTestS3, type TestS3 } from "./fixtures.js";

let db: TestDatabase;
let s3: TestS3;
const ALLOW = "^teams/\\d+/$";

beforeAll(async () => {
  [db, s3] = await Promise.all([createTestDatabase("blob-allow"), startTestS3(["fleet"])]);
});

afterAll(async () => {
  await Promise.all([db?.drop(), s3?.stop()]);
});

describe("allowPrefix", () => {
  it("refuses a bad regular expression when the options are loaded, naming options.allowPrefix", () => {
    expect(() =>
      testEntry(blob, { pool: db.pool, id: "bad", options: blobOptions(s3.endpoint, "fleet", { allowPrefix: "^teams/(\\d+/$" }) }),
    ).toThrow('(config) plugins[0].options.allowPrefix: expected a valid regular expression, found "^teams/(\\\\d+/$"');
  });

  it("refuses at enqueue a prefix, or an object key, outside what it allows; accepts what it allows", async () => {
    const entry = testEntry(blob, { pool: db.pool, id: "teams", options: blobOptions(s3.endpoint, "fleet", { allowPrefix: ALLOW }) });
    const kinds = binKinds([entry]);
    await expect(enqueue(db.pool, "teams.prefix", { prefix: "teams/42/robots/" }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message:
        'bin payload for teams.prefix: prefix "teams/42/robots/" does not match this entry\'s allowPrefix /^teams/\\d+/$/: nothing deleted',
    });
    await expect(enqueue(db.pool, "teams.prefix", { prefix: "backups/", exact: true }, kinds)).rejects.toMatchObject({ code: "PAYLOAD" });
    await expect(enqueue(db.pool, "teams.object", { key: "backups/db.dump" }, kinds)).rejects.toMatchObject({
      code: "PAYLOAD",
      message:
        'bin payload for teams.object: key "backups/db.dump" lies under no prefix this entry\'s allowPrefix /^teams/\\d+/$/ allows: nothing deleted',
    });
    const worker = await startBinWorker(blob, {
      pool: db.pool,
      id: "teams",
      options: blobOptions(s3.endpoint, "fleet", { allowPrefix: ALLOW }),
    });
    await putObjects(s3.client, "fleet", ["teams/7/a", "teams/7/b/c", "teams/8/keep"]);
    const ids = [await worker.enqueue("prefix", { prefix: "teams/7/" }), await worker.enqueue("object", { key: "teams/8/keep" })];
    await worker.start();
    try {
      const items = await worker.settle(ids);
      expect(items.map((i) => [i.status, i.processed])).toEqual([
        ["done", 2],
        ["done", 1],
      ]);
    } finally {
      await worker.stop();
    }
    expect(await listKeys(s3.client, "fleet", "teams/")).toEqual([]);
  });

  it("fails at once (not retried), touching nothing, a prefix or key outside it enqueued from SQL", async () => {
    await putObjects(s3.client, "fleet", ["teams/9/x/a", "secrets/key.pem"]);
    const worker = await startBinWorker(blob, {
      pool: db.pool,
      id: "teams",
      options: blobOptions(s3.endpoint, "fleet", { allowPrefix: ALLOW }),
    });
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT purger.enqueue('teams.prefix', '{"prefix":"teams/9/x/"}'::jsonb)::text AS id
       UNION ALL SELECT purger.enqueue('teams.object', '{"key":"secrets/key.pem"}'::jsonb)::text`,
    );
    await worker.start();
    try {
      const items = await worker.settle(rows.map((r) => r.id));
      expect(items.map((i) => [i.status, i.attempts])).toEqual([
        ["failed", 1],
        ["failed", 1],
      ]);
      expect(items[0]!.lastError).toContain("does not match this entry's allowPrefix");
      expect(items[1]!.lastError).toContain("lies under no prefix this entry's allowPrefix");
    } finally {
      await worker.stop();
    }
    expect(await listKeys(s3.client, "fleet")).toEqual(["secrets/key.pem", "teams/9/x/a"]);
  });
});
