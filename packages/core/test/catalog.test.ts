/**
 * The SDK's Postgres catalog toolkit, against a real database: table lookup
 * with "did you mean", columns with types and NOT NULL, the key check, index
 * diagnostics.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyColumn, leadingIndex, loadReferencingKeys, loadTable, loadTables, parseTableName, requireColumn } from "../src/host.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase("catalog");
  await db.pool.query(`
    CREATE SCHEMA app;
    CREATE DOMAIN app.stamp AS timestamptz;
    CREATE TYPE app.state AS ENUM ('active', 'revoked');
    CREATE TABLE app."Uploads" (
      id bigint PRIMARY KEY,
      created_at app.stamp NOT NULL,
      object_key varchar(200),
      state app.state NOT NULL,
      note text
    );
    CREATE INDEX uploads_created ON app."Uploads" (created_at, id);
    CREATE INDEX uploads_key_live ON app."Uploads" (object_key) WHERE state = 'active';
    CREATE UNIQUE INDEX uploads_note ON app."Uploads" (note);
    CREATE TABLE app.parts (a int NOT NULL, b int NOT NULL, upload bigint REFERENCES app."Uploads" ON DELETE CASCADE, PRIMARY KEY (a, b));
    CREATE VIEW app.recent AS SELECT * FROM app."Uploads";
  `);
});

afterAll(async () => {
  await db?.drop();
});

const where = "options.uploads.table";

describe("loadTable", () => {
  it("finds a table by schema.name with its columns, types, NOT NULL, key, indexes and privileges", async () => {
    const table = await loadTable(db.pool, 'app."Uploads"', { where });
    expect([table.sql, table.display, table.kind]).toEqual(['"app"."Uploads"', 'app."Uploads"', "r"]);
    const created = table.columns.get("created_at")!;
    expect(created).toMatchObject({ num: 2, notNull: true, sql: '"created_at"' });
    expect(created.type).toMatchObject({ name: "stamp", base: "timestamptz", sql: '"app"."stamp"', labels: null });
    expect(table.columns.get("object_key")!.type).toMatchObject({ base: "varchar", display: "character varying(200)" });
    expect(table.columns.get("object_key")!.notNull).toBe(false);
    expect(table.columns.get("state")!.type.labels).toEqual(["active", "revoked"]);
    expect(table.primaryKey?.map((c) => c.name)).toEqual(["id"]);
    expect(table.indexes.map((i) => [i.name, i.primary, i.unique, i.partial])).toEqual([
      ["Uploads_pkey", true, true, false],
      ["uploads_created", false, false, false],
      ["uploads_key_live", false, false, true],
      ["uploads_note", false, true, false],
    ]);
    expect(table.privileges).toEqual({ select: true, insert: true, update: true, delete: true });
  });

  it("searches the search_path without a schema, and says which table differs only in case", async () => {
    await db.pool.query("SET search_path = app, public");
    try {
      expect((await loadTable(db.pool, "parts", { where })).display).toBe("app.parts");
    } finally {
      await db.pool.query("RESET search_path");
    }
    await expect(loadTable(db.pool, "app.uploads", { where })).rejects.toMatchObject({
      code: "TARGET",
      message: 'options.uploads.table: table "app.uploads" does not exist',
      hint: 'did you mean "app."Uploads""? Names are matched exactly (case included)',
    });
    await expect(loadTable(db.pool, "nothing", { where })).rejects.toMatchObject({
      code: "TARGET",
      hint: "without a schema it is searched in the search_path; check the name, or write `schema.name`",
    });
    await expect(loadTable(db.pool, "a.b.c", { where })).rejects.toMatchObject({
      code: "CONFIG",
      message: 'options.uploads.table: "a.b.c" is not a table name',
    });
    await expect(loadTable(db.pool, "app.recent", { where, kinds: ["r", "p"] })).rejects.toMatchObject({
      code: "CONFIG",
      message: "options.uploads.table: app.recent is not a table (relkind v)",
    });
  });

  it("loadTables answers many names at once, null for a missing one", async () => {
    const refs = ["app.parts", "app.missing", 'app."Uploads"'].map((t) => parseTableName(t)!);
    expect((await loadTables(db.pool, refs)).map((t) => t?.display ?? null)).toEqual(["app.parts", null, 'app."Uploads"']);
  });
});

describe("columns and keys", () => {
  it("requireColumn: did you mean, the table's columns, and a type check", async () => {
    const table = await loadTable(db.pool, 'app."Uploads"', { where });
    expect(requireColumn(table, "created_at", "options.uploads.column").name).toBe("created_at");
    expect(() => requireColumn(table, "Created_At", "options.uploads.column")).toThrow(
      expect.objectContaining({
        code: "TARGET",
        message: 'options.uploads.column: column "Created_At" does not exist in app."Uploads"',
        hint: 'did you mean "created_at"?',
      }),
    );
    expect(() => requireColumn(table, "zzz", "options.uploads.column")).toThrow(
      expect.objectContaining({ hint: "its columns: id, created_at, object_key, state, note" }),
    );
    expect(() => requireColumn(table, "object_key", "options.uploads.flag", { accept: ["bool"], expected: "boolean" })).toThrow(
      expect.objectContaining({
        code: "TARGET",
        message: 'options.uploads.flag: column "object_key" of app."Uploads" is character varying(200), expected boolean',
      }),
    );
  });

  it("keyColumn: the single-column primary key, a named unique NOT NULL key, and refusals", async () => {
    const uploads = await loadTable(db.pool, 'app."Uploads"', { where });
    const parts = await loadTable(db.pool, "app.parts", { where });
    expect((await keyColumn(db.pool, uploads, undefined, "uploads.key")).name).toBe("id");
    await expect(keyColumn(db.pool, parts, undefined, "uploads.key")).rejects.toMatchObject({
      code: "TARGET",
      message: "options.uploads.key: app.parts has a primary key of several columns",
    });
    await expect(keyColumn(db.pool, uploads, "note", "uploads.key")).rejects.toMatchObject({
      code: "TARGET",
      message: 'options.uploads.key: column "note" of app.Uploads is nullable, so it cannot identify a row',
    });
  });

  it("leadingIndex: valid indexes by their first columns; whole and unique ones when asked", async () => {
    const table = await loadTable(db.pool, 'app."Uploads"', { where });
    const col = (name: string) => table.columns.get(name)!;
    expect(leadingIndex(table, col("created_at"))?.name).toBe("uploads_created");
    expect(leadingIndex(table, [col("created_at"), col("id")], { method: "btree" })?.name).toBe("uploads_created");
    expect(leadingIndex(table, col("created_at"), { exact: true })).toBeNull();
    expect(leadingIndex(table, col("object_key"))?.name).toBe("uploads_key_live");
    expect(leadingIndex(table, col("object_key"), { whole: true })).toBeNull();
    expect(leadingIndex(table, col("note"), { unique: true })?.name).toBe("uploads_note");
    expect(leadingIndex(table, col("state"))).toBeNull();
  });

  it("loadReferencingKeys: the foreign keys that point at a table", async () => {
    const table = await loadTable(db.pool, 'app."Uploads"', { where });
    expect(await loadReferencingKeys(db.pool, table.oid)).toEqual([
      {
        name: "parts_upload_fkey",
        table: { oid: expect.any(Number), display: "app.parts", sql: '"app"."parts"' },
        columns: ["upload"],
        onDelete: "c",
      },
    ]);
  });
});
