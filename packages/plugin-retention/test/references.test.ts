import { beforeAll, describe, expect, it } from "vitest";
import { ago, column, DAY, ids, run, useDatabase } from "./fixtures.js";

const db = useDatabase("retention_references");
const OLD = ago(40 * DAY);
const RECENT = ago(DAY);

describe("unlessReferencedBy / unlessReferences", () => {
  it("keeps a row while a row of another table (matching where) references it", async () => {
    const pool = db.pool();
    await pool.query(`
      CREATE TABLE users (id int PRIMARY KEY, deleted_at timestamptz);
      CREATE TABLE sessions (id int PRIMARY KEY, user_id int REFERENCES users ON DELETE CASCADE, finished_at timestamptz);
      CREATE TABLE emails (id int PRIMARY KEY, owner int);`);
    await pool.query(`INSERT INTO users VALUES (1, $1), (2, $1), (3, $1), (4, $1), (5, $2)`, [OLD, RECENT]);
    await pool.query(`INSERT INTO sessions VALUES (10, 2, NULL), (11, 2, $1), (30, 3, $1), (31, 3, $1), (50, 5, NULL)`, [OLD]);
    await pool.query(`INSERT INTO emails VALUES (40, 4)`);
    const options = {
      table: "users",
      column: "deleted_at",
      unlessReferencedBy: [
        { table: "sessions", column: "user_id", where: { finished_at: null } },
        { table: "emails", column: "owner", references: "id" },
      ],
    };
    expect(await run(pool, options, { retention: "30d", batchSize: 1, dryRun: true })).toMatchObject({ processed: 2, sample: ["1", "3"] });
    expect(await run(pool, options, { retention: "30d", batchSize: 1 })).toMatchObject({ status: "succeeded", processed: 2 });
    expect(await ids(pool, "users")).toEqual([2, 4, 5]);
  });

  it("keeps a consumed refresh token while its successor is unconsumed", async () => {
    const pool = db.pool();
    await pool.query(
      `CREATE TABLE refresh_tokens (id int PRIMARY KEY, consumed_at timestamptz, next_id int REFERENCES refresh_tokens ON DELETE SET NULL)`,
    );
    await pool.query(
      `INSERT INTO refresh_tokens VALUES (7, NULL, NULL), (6, $2, 7), (5, $1, 6), (3, NULL, NULL), (2, $1, 3), (1, $1, 2), (4, $1, NULL)`,
      [OLD, RECENT],
    );
    const options = {
      table: "refresh_tokens",
      column: "consumed_at",
      unlessReferences: [{ column: "next_id", table: "refresh_tokens", where: { consumed_at: null } }],
    };
    expect(await run(pool, options, { retention: "30d", batchSize: 1 })).toMatchObject({ status: "succeeded", processed: 3 });
    expect(await ids(pool, "refresh_tokens")).toEqual([2, 3, 6, 7]);
  });
});

describe("cascade", () => {
  beforeAll(async () => {
    const pool = db.pool();
    // ON DELETE RESTRICT checks at once, so the order of the deletes matters: refresh tokens, access tokens, oauth2 sessions, then the user session.
    await pool.query(`
      CREATE TABLE browser_sessions (id int PRIMARY KEY, finished_at timestamptz);
      CREATE TABLE oauth2_sessions (id int PRIMARY KEY, browser_session_id int REFERENCES browser_sessions);
      CREATE TABLE oauth2_access_tokens (id int PRIMARY KEY, oauth2_session_id int NOT NULL REFERENCES oauth2_sessions ON DELETE RESTRICT);
      CREATE TABLE oauth2_refresh_tokens (id int PRIMARY KEY, oauth2_session_id int NOT NULL REFERENCES oauth2_sessions ON DELETE RESTRICT,
                                          access_token_id int REFERENCES oauth2_access_tokens ON DELETE RESTRICT);`);
    await pool.query(`INSERT INTO browser_sessions VALUES (1, $1), (2, $1), (3, NULL), (4, $2)`, [OLD, RECENT]);
    await pool.query(`
      INSERT INTO oauth2_sessions VALUES (10, 1), (11, 1), (20, 2), (30, 3), (40, 4), (50, NULL);
      INSERT INTO oauth2_access_tokens VALUES (100, 10), (101, 10), (110, 11), (200, 20), (300, 30), (400, 40), (500, 50);
      INSERT INTO oauth2_refresh_tokens VALUES (1000, 10, 100), (1100, 11, 110), (2000, 20, 200), (3000, 30, 300), (5000, 50, 500);`);
  });

  const options = {
    table: "browser_sessions",
    column: "finished_at",
    cascade: [
      { table: "oauth2_refresh_tokens", column: "oauth2_session_id", parent: "oauth2_sessions" },
      { table: "oauth2_access_tokens", column: "oauth2_session_id", parent: "oauth2_sessions" },
      { table: "oauth2_sessions", column: "browser_session_id" },
    ],
  };
  const snapshot = async () => ({
    browser: await ids(db.pool(), "browser_sessions"),
    sessions: await ids(db.pool(), "oauth2_sessions"),
    access: await ids(db.pool(), "oauth2_access_tokens"),
    refresh: await ids(db.pool(), "oauth2_refresh_tokens"),
  });

  it("a row referenced from a table not listed fails the batch with the constraint named; nothing is half deleted", async () => {
    const pool = db.pool();
    const before = await snapshot();
    await pool.query(
      `CREATE TABLE audit (id int PRIMARY KEY, browser_session_id int REFERENCES browser_sessions); INSERT INTO audit VALUES (1, 2)`,
    );
    const result = await run(pool, options, { retention: "30d" });
    expect(result.status).toBe("failed");
    expect(result.error).toMatchInlineSnapshot(
      `"cannot delete rows of public.browser_sessions: rows of public.audit still reference them through foreign key "audit_browser_session_id_fkey" (browser_session_id); the batch was rolled back, nothing was deleted. Add { table: public.audit, column: browser_session_id } to \`cascade\` (delete them too, listed before the table they reference) or to \`unlessReferencedBy\` (keep rows still referenced)"`,
    );
    expect(await snapshot()).toEqual(before);
    await pool.query(`DROP TABLE audit`);
  });

  it("a cascade child referenced from a table not listed fails the same way", async () => {
    const pool = db.pool();
    const before = await snapshot();
    await pool.query(
      `CREATE TABLE token_uses (id int PRIMARY KEY, access_token_id int REFERENCES oauth2_access_tokens); INSERT INTO token_uses VALUES (1, 200)`,
    );
    const result = await run(pool, options, { retention: "30d" });
    expect(result.status).toBe("failed");
    expect(result.error).toMatchInlineSnapshot(
      `"cannot delete rows of public.oauth2_access_tokens: rows of public.token_uses still reference them through foreign key "token_uses_access_token_id_fkey" (access_token_id); the batch was rolled back, nothing was deleted. Add { table: public.token_uses, column: access_token_id } to \`cascade\` (delete them too, listed before the table they reference) or to \`unlessReferencedBy\` (keep rows still referenced)"`,
    );
    expect(await snapshot()).toEqual(before);
    await pool.query(`DROP TABLE token_uses`);
  });

  it("guard.maxRows counts the cascade children too: 2 rows qualify, with their children 12", async () => {
    const pool = db.pool();
    const before = await snapshot();
    const guarded = await run(pool, options, { retention: "30d", guard: { maxRows: 11 } });
    expect(guarded).toMatchObject({ status: "guarded", processed: 0 });
    expect(guarded.guard).toBe("guard.maxRows: more than 11 items qualify (counted 12, stopped counting at 12); nothing was changed");
    expect(await snapshot()).toEqual(before);
    const dry = await run(pool, options, { retention: "30d", guard: { maxRows: 12 }, dryRun: true });
    expect(dry).toMatchObject({ status: "succeeded", processed: 2 });
    // maxFraction compares them with every row of the table and its cascade tables: 12 of 4 + 6 + 7 + 5.
    const byFraction = await run(pool, options, { retention: "30d", guard: { maxFraction: 0.5 }, dryRun: true });
    expect(byFraction.guard).toBe(
      "guard.maxFraction: at least 12 of 22 items (54.5%) qualify, more than the limit of 50.0%; nothing was changed",
    );
    expect(await run(pool, options, { retention: "30d", guard: { maxFraction: 0.6 }, dryRun: true })).toMatchObject({
      status: "succeeded",
    });
  });

  it("deletes children (two levels) first in the order listed, counted per table; the dry run counts the same", async () => {
    const pool = db.pool();
    const before = await snapshot();
    const dry = await run(pool, options, { retention: "30d", batchSize: 1, dryRun: true });
    expect(await snapshot()).toEqual(before);
    const real = await run(pool, options, { retention: "30d", batchSize: 1 });
    expect(real).toMatchObject({ status: "succeeded", processed: 2 });
    expect(real.tables).toEqual({
      "public.browser_sessions": 2,
      "public.oauth2_sessions": 3,
      "public.oauth2_access_tokens": 4,
      "public.oauth2_refresh_tokens": 3,
    });
    expect(dry).toMatchObject({ processed: real.processed, tables: real.tables, sample: ["1", "2"] });
    expect(await snapshot()).toEqual({ browser: [3, 4], sessions: [30, 40, 50], access: [300, 400, 500], refresh: [3000, 5000] });
  });

  it("a grandchild listed after its parent is a CONFIG error (it would be deleted too late)", async () => {
    const pool = db.pool();
    const reversed = { ...options, cascade: [options.cascade[2], options.cascade[0], options.cascade[1]] };
    await expect(run(pool, reversed, { retention: "30d" })).rejects.toMatchObject({
      code: "CONFIG",
      message:
        'cascade[1] (public.oauth2_refresh_tokens) hangs off cascade[0] (public.oauth2_sessions), which would be deleted before it (entry "test", options.cascade[1].parent)',
    });
  });
});

describe("keys", () => {
  it("a composite primary key drives the keyset and the delete", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE tenant_events (tenant text, id int, at timestamptz, PRIMARY KEY (tenant, id))`);
    await pool.query(`INSERT INTO tenant_events SELECT t, g, $1 FROM unnest(ARRAY['a', 'b', 'c']) t, generate_series(1, 5) g`, [OLD]);
    await pool.query(`INSERT INTO tenant_events VALUES ('a', 6, $1)`, [RECENT]);
    const dry = await run(pool, { table: "tenant_events", column: "at" }, { retention: "30d", batchSize: 4, dryRun: true });
    expect(dry).toMatchObject({
      processed: 15,
      sample: ["(a,1)", "(a,2)", "(a,3)", "(a,4)", "(a,5)", "(b,1)", "(b,2)", "(b,3)", "(b,4)", "(b,5)"],
    });
    expect(await run(pool, { table: "tenant_events", column: "at" }, { retention: "30d", batchSize: 4 })).toMatchObject({ processed: 15 });
    expect(await column(pool, `SELECT tenant || id FROM tenant_events`)).toEqual(["a6"]);
  });
});
