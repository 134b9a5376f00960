import { describe, expect, it } from "vitest";
import { checkPlugin } from "@purger/core/testing";
import retention from "../src/index.js";
import { useDatabase } from "./fixtures.js";

const db = useDatabase("retention_check");

describe("check (the index doctor)", () => {
  it("reports a missing index on the clock column, on cascade and unlessReferencedBy columns, with the CREATE INDEX to run", async () => {
    const pool = db.pool();
    await pool.query(`
      CREATE TABLE sessions (id bigint PRIMARY KEY, finished_at timestamptz);
      CREATE TABLE tokens (id bigint PRIMARY KEY, session_id bigint REFERENCES sessions);
      CREATE TABLE "Grants" (id bigint PRIMARY KEY, "Session Id" bigint);
      CREATE TABLE logins (id bigint PRIMARY KEY, session_id bigint REFERENCES sessions);
      CREATE INDEX ON "Grants" ("Session Id");`);
    const options = {
      table: "sessions",
      column: "finished_at",
      cascade: [{ table: "tokens", column: "session_id" }],
      unlessReferencedBy: [{ table: "Grants", column: "Session Id" }],
    };
    expect(await checkPlugin(retention, { pool, options, retention: "30d" })).toMatchInlineSnapshot(`
      [
        {
          "hint": "CREATE INDEX CONCURRENTLY ON "public"."sessions" ("finished_at", "id");",
          "level": "warn",
          "message": "the clock column public.sessions.finished_at has no index leading with finished_at: every batch scans the table to find old rows",
        },
        {
          "level": "ok",
          "message": "unlessReferencedBy public."Grants"."Session Id": served by index "Grants_Session Id_idx"",
        },
        {
          "hint": "CREATE INDEX CONCURRENTLY ON "public"."tokens" ("session_id");",
          "level": "warn",
          "message": "cascade public.tokens.session_id has no index leading with session_id: every batch scans that table to find the children",
        },
        {
          "hint": "add { table: public.logins, column: session_id } to cascade (delete them too) or to unlessReferencedBy (keep referenced rows)",
          "level": "warn",
          "message": "public.logins references public.sessions through foreign key "logins_session_id_fkey" (session_id): a batch deleting a referenced row fails and rolls back",
        },
      ]
    `);
  });

  it("is content when every index is there", async () => {
    const pool = db.pool();
    await pool.query(`CREATE INDEX sessions_finished_at ON sessions (finished_at); CREATE INDEX ON tokens (session_id)`);
    const diagnostics = await checkPlugin(retention, {
      pool,
      options: {
        table: "sessions",
        column: "finished_at",
        cascade: [{ table: "tokens", column: "session_id" }],
        unlessReferencedBy: [{ table: "logins", column: "session_id" }],
      },
      retention: "30d",
    });
    expect(diagnostics.filter((d) => d.level !== "ok")).toEqual([
      {
        level: "warn",
        message: "unlessReferencedBy public.logins.session_id has no index leading with session_id: every row checked scans that table",
        hint: 'CREATE INDEX CONCURRENTLY ON "public"."logins" ("session_id");',
      },
    ]);
  });

  it("describes the target in one line", () => {
    expect(
      retention.describe!({
        table: "oauth2_access_tokens",
        column: "revoked_at",
        columnFormat: "timestamp",
        timeZone: "UTC",
        action: "delete",
      }),
    ).toBe("oauth2_access_tokens.revoked_at");
    expect(
      retention.describe!({
        table: "user_sessions",
        column: "last_active_at",
        columnFormat: "timestamp",
        timeZone: "UTC",
        action: "update",
        set: { last_active_ip: null },
      }),
    ).toBe("user_sessions.last_active_at → update last_active_ip");
  });
});
