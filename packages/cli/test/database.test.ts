/**
 * `connectDatabase` sizes the pool and the worker to the connections the
 * database has room for (read at start), against a real PostgreSQL whose
 * test database is given a connection limit.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quoteIdent, resolveConfig, type Logger } from "@purger/core/host";
import { createTestDatabase } from "@purger/core/testing";
import { connectDatabase } from "../src/database.js";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
const held: pg.Client[] = [];

beforeAll(async () => {
  db = await createTestDatabase("capacity");
  const name = decodeURIComponent(new URL(db.url).pathname.slice(1));
  // Not through db.pool, which would keep an idle connection: only `held` counts as others' sessions.
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(`ALTER DATABASE ${quoteIdent(name)} CONNECTION LIMIT 16`);
  await admin.end();
  for (let i = 0; i < 4; i++) {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    held.push(client);
  }
});

afterAll(async () => {
  for (const client of held) await client.end();
  await db?.drop();
});

function capturingLogger(): { log: Logger; warnings: Array<{ obj: object; msg: string | undefined }> } {
  const warnings: Array<{ obj: object; msg: string | undefined }> = [];
  const log: Logger = { debug() {}, info() {}, error() {}, warn: (obj, msg) => warnings.push({ obj, msg }), child: () => log };
  return { log, warnings };
}

describe("worker connections against the database's room", () => {
  it("a concurrency that cannot fit is lowered to what fits, with a warning; the pool never asks for more than there is", async () => {
    const config = await resolveConfig({ database: { url: db.url }, worker: { concurrency: 50 }, plugins: [] }, { env: {} });
    const { log, warnings } = capturingLogger();
    const database = await connectDatabase(config, { log, concurrency: 50 });
    try {
      // 16 allowed, 4 held by others: 12 for purger, 5 for the worker and 3 per task.
      expect({ concurrency: database.concurrency, poolSize: database.pool.options.max }).toEqual({ concurrency: 2, poolSize: 11 });
      expect(warnings).toEqual([
        {
          obj: { event: "worker:concurrency", configured: 50, concurrency: 2, available: 12 },
          msg: "concurrency 50 needs 155 database connections; the database has room for 12 (max_connections less reserved slots and open sessions, within the database's and role's limits): running with concurrency 2",
        },
      ]);
    } finally {
      await database.close();
    }
  });

  it("a concurrency that fits is kept, silently", async () => {
    const config = await resolveConfig({ database: { url: db.url }, worker: { concurrency: 2 }, plugins: [] }, { env: {} });
    const { log, warnings } = capturingLogger();
    const database = await connectDatabase(config, { log, concurrency: 2 });
    try {
      expect({ concurrency: database.concurrency, poolSize: database.pool.options.max }).toEqual({ concurrency: 2, poolSize: 11 });
      expect(warnings).toEqual([]);
    } finally {
      await database.close();
    }
  });

  it("no room for even one task is an error that says what to change", async () => {
    const extra: pg.Client[] = [];
    try {
      for (let i = 0; i < 7; i++) {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        extra.push(client);
      }
      const config = await resolveConfig({ database: { url: db.url }, plugins: [] }, { env: {} });
      const error = await connectDatabase(config, { log: capturingLogger().log, concurrency: 4 }).catch((caught: unknown) => caught);
      expect(error).toMatchObject({
        code: "DATABASE",
        message:
          "the database has room for 5 more connections; purger run needs at least 8 (concurrency 1: 3 per task and 5 for the worker itself)",
      });
    } finally {
      for (const client of extra) await client.end();
    }
  });
});
