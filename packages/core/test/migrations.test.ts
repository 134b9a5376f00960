/**
 * Versioned migrations of purger's own schema, against a real PostgreSQL: a
 * fresh database, the upgrade of one created by release 0.1.0 (the schema in
 * fixtures/schema-0.1.0.sql, with runs and bin items in it), replicas
 * migrating at once, a database newer than this code, and a repeated migrate.
 */
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Logger as GraphileLogger, runMigrations } from "graphile-worker";
import pg from "pg";
import { migrate, PurgerError, schemaVersion } from "../src/host.js";
import { migrations } from "../src/db/migrations.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

const workerSchema = "purger_worker";
const latest = migrations.at(-1)!;
const kinds = [{ kind: "blobs.prefix", entry: "blobs", handler: "prefix" }];

let databases: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(databases.map((db) => db.drop()));
  databases = [];
});

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase("migrations");
  databases.push(db);
  return db;
}

async function recorded(pool: pg.Pool): Promise<{ version: number; name: string }[]> {
  const { rows } = await pool.query<{ version: number; name: string }>("SELECT version, name FROM purger.migrations ORDER BY version");
  return rows;
}

/**
 * Every row of purger's tables, as JSON, to compare before and after an upgrade
 * (not bin_kinds: every migrate registers the config's kinds anew).
 */
async function everyRow(pool: pg.Pool): Promise<Record<string, unknown[]>> {
  const tables = ["runs", "bin", "processes", "entries"];
  const result: Record<string, unknown[]> = {};
  for (const table of tables) {
    const { rows } = await pool.query<{ row: unknown }>(`SELECT to_jsonb(t) AS row FROM purger.${table} t ORDER BY 1::text`);
    result[table] = rows.map((r) => r.row);
  }
  return result;
}

const schema010 = () => readFile(new URL("fixtures/schema-0.1.0.sql", import.meta.url), "utf8");

const quietGraphileLogger = new GraphileLogger(() => () => {});

describe("migrate", () => {
  it("numbers its migrations 1, 2, 3 … without gaps, each named", () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    for (const m of migrations) expect(m.name).toMatch(/^[a-z0-9-]+$/);
    expect(migrations[0]).toMatchObject({ version: 1, name: "initial" });
  });

  it("applies every migration to a fresh database and records each", async () => {
    const db = await database();
    expect(await schemaVersion(db.pool)).toEqual({ version: 0, latest: latest.version, upToDate: false });

    const result = await migrate(db.pool, { workerSchema, kinds });

    expect(result).toEqual({ from: 0, to: latest.version, applied: migrations.map((m) => m.version) });
    expect(await recorded(db.pool)).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
    expect(await schemaVersion(db.pool)).toEqual({ version: latest.version, latest: latest.version, upToDate: true });
    const { rows } = await db.pool.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'purger' ORDER BY table_name",
    );
    expect(rows.map((r) => r.table_name)).toEqual(["bin", "bin_kinds", "entries", "migrations", "processes", "runs"]);
    expect((await db.pool.query("SELECT kind, entry, handler FROM purger.bin_kinds")).rows).toEqual(kinds);
  });

  it("upgrades a database created by release 0.1.0: every run and bin item kept, the version current, enqueue works", async () => {
    const db = await database();
    await runMigrations({ pgPool: db.pool, schema: workerSchema, logger: quietGraphileLogger });
    await db.pool.query(await schema010());
    await db.pool.query(
      `INSERT INTO purger.runs (entry, plugin, trigger, status, cutoff, processed, batches, slices, checkpoint, process_id, host, pid)
       VALUES ('orders', '@purger/plugin-retention', 'schedule', 'running', '2026-01-01T00:00:00Z', 5000, 5, 1,
               '{"after": [12345], "table": "public.orders"}', 'p-1', 'host-a', 4242)`,
    );
    await db.pool.query(
      `INSERT INTO purger.runs (entry, plugin, trigger, status, processed, finished_at, duration_ms)
       VALUES ('orders', '@purger/plugin-retention', 'manual', 'done', 120, now(), 3400)`,
    );
    await db.pool.query("INSERT INTO purger.bin_kinds (kind, entry, handler) VALUES ('blobs.prefix', 'blobs', 'prefix')");
    await db.pool.query(
      `INSERT INTO purger.bin (kind, payload, status, attempts, last_error)
       VALUES ('blobs.prefix', '{"prefix": "tenants/1/"}', 'pending', 0, NULL),
              ('blobs.prefix', '{"prefix": "tenants/2/"}', 'failed', 10, 'S3 said 503')`,
    );
    await db.pool.query("INSERT INTO purger.entries (id, paused) VALUES ('orders', true)");
    await db.pool.query("INSERT INTO purger.processes (id, host, pid, concurrency, worker_ids) VALUES ('p-1', 'host-a', 4242, 4, '{w1}')");
    const before = await everyRow(db.pool);

    const result = await migrate(db.pool, { workerSchema, kinds });

    expect(result).toEqual({ from: 0, to: latest.version, applied: migrations.map((m) => m.version) });
    // Every value of 0.1.0's columns is kept; later migrations only add columns (null or their defaults).
    const after = await everyRow(db.pool);
    const keptColumns = (now: Record<string, unknown[]>) =>
      Object.fromEntries(
        Object.entries(now).map(([table, rows]) => [
          table,
          rows.map((row, i) =>
            Object.fromEntries(Object.keys(before[table]![i] as object).map((k) => [k, (row as Record<string, unknown>)[k]])),
          ),
        ]),
      );
    expect(keptColumns(after)).toEqual(before);
    expect(await schemaVersion(db.pool)).toMatchObject({ version: latest.version, upToDate: true });
    const { rows } = await db.pool.query<{ id: string }>(`SELECT purger.enqueue('blobs.prefix', '{"prefix": "tenants/3/"}') AS id`);
    const item = await db.pool.query("SELECT kind, payload, status FROM purger.bin WHERE id = $1", [rows[0]!.id]);
    expect(item.rows).toEqual([{ kind: "blobs.prefix", payload: { prefix: "tenants/3/" }, status: "pending" }]);
    const jobs = await db.pool.query(
      `SELECT j.payload FROM ${workerSchema}._private_jobs j JOIN ${workerSchema}._private_tasks t ON t.id = j.task_id WHERE t.identifier = 'purger:bin'`,
    );
    expect(jobs.rows).toEqual([{ payload: { item: String(rows[0]!.id) } }]);
  });

  it("two replicas migrating at once both succeed, each migration applied once", async () => {
    const db = await database();
    const other = new pg.Pool({ connectionString: db.url, max: 4 });
    other.on("error", () => {});
    other.on("connect", (client) => client.on("error", () => {}));
    try {
      const results = await Promise.all([migrate(db.pool, { workerSchema, kinds }), migrate(other, { workerSchema, kinds })]);
      const applied = results.map((r) => r.applied).sort((a, b) => b.length - a.length);
      expect(applied).toEqual([migrations.map((m) => m.version), []]);
      expect(await recorded(db.pool)).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
    } finally {
      await other.end();
    }
  });

  it("waits for a replica of release 0.1.0 migrating at the same moment (the same lock), then upgrades", async () => {
    const db = await database();
    await runMigrations({ pgPool: db.pool, schema: workerSchema, logger: quietGraphileLogger });
    // What 0.1.0's migrate does: its schema in one transaction under a transaction-level lock of the same name.
    const old = await db.pool.connect();
    try {
      await old.query("BEGIN");
      await old.query("SELECT pg_advisory_xact_lock(hashtextextended('purger:migrate', 0))");
      await old.query(await schema010());

      const upgrading = migrate(db.pool, { workerSchema, kinds });
      await vi.waitUntil(
        async () => {
          const { rows } = await db.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          );
          return rows[0]?.n === 1;
        },
        { timeout: 20_000, interval: 20 },
      );
      await old.query("INSERT INTO purger.entries (id, paused) VALUES ('orders', true)");
      await old.query("COMMIT");

      expect((await upgrading).applied).toEqual(migrations.map((m) => m.version));
      expect((await db.pool.query("SELECT id, paused FROM purger.entries")).rows).toEqual([{ id: "orders", paused: true }]);
    } finally {
      old.release();
    }
  });

  it("refuses a database at a newer version than this purger knows, and changes nothing", async () => {
    const db = await database();
    await migrate(db.pool, { workerSchema });
    await db.pool.query("INSERT INTO purger.migrations (version, name) VALUES (9999, 'from-a-newer-release')");

    const error = await migrate(db.pool, { workerSchema, kinds }).then(
      () => null,
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(PurgerError);
    const { code, message, hint } = error as PurgerError;
    // The newest migration this code knows changes with every schema change; the text around it does not.
    const known = `${latest.version}, "${latest.name}"`;
    expect({ code, message: message.replace(known, "<latest>"), hint }).toMatchInlineSnapshot(`
      {
        "code": "DATABASE",
        "hint": "Run that release or a newer one against this database (upgrade purger where this command runs); an older purger could misread or damage data it does not know. Nothing was changed.",
        "message": "the database's purger schema is at version 9999, newer than this purger knows (up to <latest>): a newer release of purger upgraded it",
      }
    `);
    expect((await db.pool.query("SELECT * FROM purger.bin_kinds")).rows).toEqual([]);
    expect(await schemaVersion(db.pool)).toEqual({ version: 9999, latest: latest.version, upToDate: false });
  });

  it("a migration that fails is rolled back whole, with its row, and leaves the lock free", async () => {
    const db = await database();
    // A table of the same name but another shape: 0001's CREATE TABLE IF NOT EXISTS keeps it, its index cannot be built.
    await db.pool.query("CREATE SCHEMA purger; CREATE TABLE purger.bin (id bigserial PRIMARY KEY)");

    const error = await migrate(db.pool, { workerSchema, kinds }).then(
      () => null,
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(PurgerError);
    const { code, message, hint } = error as PurgerError;
    expect({ code, message, hint }).toMatchInlineSnapshot(`
      {
        "code": "DATABASE",
        "hint": "That migration was rolled back whole; the ones before it are applied and recorded in purger.migrations. Fix the cause and run any purger command again to resume the upgrade.",
        "message": "purger's schema migration 1 ("initial") failed: column "status" does not exist",
      }
    `);
    expect(await recorded(db.pool)).toEqual([]);
    const { rows } = await db.pool.query("SELECT to_regclass('purger.runs') AS runs");
    expect(rows).toEqual([{ runs: null }]);

    await db.pool.query("DROP TABLE purger.bin");
    const result = await migrate(db.pool, { workerSchema, kinds });
    expect(result.applied).toEqual(migrations.map((m) => m.version));
  });

  it("a second migrate is a no-op", async () => {
    const db = await database();
    await migrate(db.pool, { workerSchema, kinds });
    const first = (await db.pool.query("SELECT version, name, applied_at FROM purger.migrations ORDER BY version")).rows;

    const result = await migrate(db.pool, { workerSchema, kinds });

    expect(result).toEqual({ from: latest.version, to: latest.version, applied: [] });
    expect((await db.pool.query("SELECT version, name, applied_at FROM purger.migrations ORDER BY version")).rows).toEqual(first);
  });
});
