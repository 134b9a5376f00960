/**
 * assertUniqueKey: the shared check of a plugin's `key` option (NOT NULL, and
 * a valid, non-partial unique index on exactly those columns).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertUniqueKey, isPurgerError } from "../src/host.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase("unique-key");
  await db.pool.query(`
    CREATE TABLE pk (id bigint PRIMARY KEY, other text);
    CREATE TABLE nullable (id bigint UNIQUE, name text);
    CREATE TABLE plain (id bigint NOT NULL, name text NOT NULL);
    CREATE TABLE partial (id bigint NOT NULL, live boolean NOT NULL);
    CREATE UNIQUE INDEX partial_id ON partial (id) WHERE live;
    CREATE TABLE wide (a int NOT NULL, b int NOT NULL, UNIQUE (a, b));
    CREATE TABLE expr (name text NOT NULL);
    CREATE UNIQUE INDEX expr_lower ON expr (lower(name));
    CREATE TABLE "Odd ""Name""" ("Key col" int NOT NULL PRIMARY KEY);
  `);
});

afterAll(async () => {
  await db?.drop();
});

async function message(table: string, columns: string[], schema = "public"): Promise<string | null> {
  try {
    await assertUniqueKey(db.pool, { table: { schema, name: table }, columns, option: "uploads.key" });
    return null;
  } catch (error) {
    expect(isPurgerError(error, "TARGET")).toBe(true);
    return (error as Error).message;
  }
}

describe("assertUniqueKey", () => {
  it("accepts a primary key, a composite unique key in any order, and quoted names", async () => {
    expect(await message("pk", ["id"])).toBeNull();
    expect(await message("wide", ["b", "a"])).toBeNull();
    expect(await message('Odd "Name"', ["Key col"])).toBeNull();
  });

  it("refuses a nullable column, a column without a unique index, a partial or expression index, or a subset of a key", async () => {
    expect(await message("nullable", ["id"])).toMatchInlineSnapshot(
      `"options.uploads.key: column "id" of public.nullable is nullable, so it cannot identify a row"`,
    );
    expect(await message("plain", ["id"])).toMatchInlineSnapshot(
      `"options.uploads.key: (id) is not a unique key of public.plain: no unique index covers exactly these columns"`,
    );
    expect(await message("partial", ["id"])).toMatchInlineSnapshot(
      `"options.uploads.key: (id) is not a unique key of public.partial: its unique index partial_id is partial (WHERE …)"`,
    );
    expect(await message("expr", ["name"])).toMatchInlineSnapshot(
      `"options.uploads.key: (name) is not a unique key of public.expr: no unique index covers exactly these columns"`,
    );
    expect(await message("wide", ["a"])).toMatchInlineSnapshot(
      `"options.uploads.key: (a) is not a unique key of public.wide: no unique index covers exactly these columns"`,
    );
    expect(await message("pk", ["missing"])).toMatchInlineSnapshot(`"options.uploads.key: column "missing" does not exist in public.pk"`);
  });

  it("refuses a unique index that is not valid", async () => {
    await db.pool.query("CREATE TABLE invalid_idx (id bigint NOT NULL)");
    await db.pool.query("CREATE UNIQUE INDEX invalid_idx_id ON invalid_idx (id)");
    // What a failed CREATE INDEX CONCURRENTLY leaves behind.
    await db.pool.query("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'invalid_idx_id'::regclass");
    expect(await message("invalid_idx", ["id"])).toMatchInlineSnapshot(
      `"options.uploads.key: (id) is not a unique key of public.invalid_idx: its unique index invalid_idx_id is not valid (a failed CREATE INDEX CONCURRENTLY?)"`,
    );
  });
});
