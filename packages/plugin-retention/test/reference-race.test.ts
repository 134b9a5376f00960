/**
 * A referencing row committed by another connection while a batch runs: the
 * reference conditions are checked again, in a fresh snapshot, once the batch's
 * rows are locked, so such a row keeps its parent.
 *
 * The window is held open deterministically: the batch reads the referencing
 * rows through a view whose rows pass a gate function, and on the connection
 * running the batches (the one holding the run's entry lock; the estimate counts
 * on another) the gate waits for an advisory lock the test holds. While the batch
 * waits, the test commits a child and then releases the lock.
 */
import { describe, expect, it } from "vitest";
import type pg from "pg";
import { ago, column, DAY, ids, run, useDatabase } from "./fixtures.js";

const db = useDatabase("retention_reference_race");
const OLD = ago(40 * DAY);
const GATE = 7_310_001;

async function waitForGate(pool: pg.Pool): Promise<void> {
  for (;;) {
    const [waiting] = await column<number>(
      pool,
      `SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`,
      [GATE],
    );
    if (waiting! > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Run `options` with the gate closed; once the batch waits at it, `meanwhile` commits, then the gate opens. */
async function runWithWindow(pool: pg.Pool, options: Record<string, unknown>, meanwhile: () => Promise<unknown>) {
  const holder = await pool.connect();
  try {
    await holder.query(`SELECT pg_advisory_lock($1)`, [GATE]);
    const running = run(pool, options, { retention: "30d" });
    try {
      await waitForGate(pool);
      await meanwhile();
    } finally {
      await holder.query(`SELECT pg_advisory_unlock($1)`, [GATE]);
    }
    return await running;
  } finally {
    holder.release();
  }
}

describe("unlessReferencedBy and a child committed during the batch (window held open by an advisory lock in a view)", () => {
  it("the child committed after the candidates were read keeps its parent; the others go", async () => {
    const pool = db.pool();
    await pool.query(`
      CREATE TABLE accounts (id int PRIMARY KEY, closed_at timestamptz);
      CREATE TABLE grants (id int PRIMARY KEY, account_id int NOT NULL);
      CREATE FUNCTION gate() RETURNS boolean LANGUAGE sql VOLATILE AS $$
        SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks l
                                  WHERE l.pid = pg_backend_pid() AND l.locktype = 'advisory' AND l.granted
                                    AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('purger:entry:test', 0))
                    THEN pg_advisory_xact_lock_shared(${GATE}) IS NOT NULL ELSE true END $$;
      CREATE VIEW live_grants AS SELECT * FROM grants WHERE gate();`);
    await pool.query(`INSERT INTO accounts VALUES (1, $1), (2, $1), (3, $1)`, [OLD]);
    // A grant of another account, so the view has a row to pass the gate.
    await pool.query(`INSERT INTO grants VALUES (100, 999)`);
    const options = { table: "accounts", column: "closed_at", unlessReferencedBy: [{ table: "live_grants", column: "account_id" }] };
    const result = await runWithWindow(pool, options, () => pool.query(`INSERT INTO grants VALUES (101, 2)`));
    expect(result).toMatchObject({ status: "succeeded", processed: 2 });
    expect(await ids(pool, "accounts")).toEqual([2]);
    expect(await column(pool, `SELECT account_id FROM grants ORDER BY id`)).toEqual([999, 2]);
  });

  it("with cascade: the parent kept by the late child keeps its cascade children too", async () => {
    const pool = db.pool();
    await pool.query(`
      CREATE TABLE devices (id int PRIMARY KEY, seen_at timestamptz);
      CREATE TABLE device_keys (id int PRIMARY KEY, device_id int NOT NULL REFERENCES devices);
      CREATE TABLE device_uses (id int PRIMARY KEY, device_id int NOT NULL);
      CREATE VIEW live_device_uses AS SELECT * FROM device_uses WHERE gate();`);
    await pool.query(`INSERT INTO devices VALUES (1, $1), (2, $1), (3, $1)`, [OLD]);
    await pool.query(`INSERT INTO device_keys VALUES (10, 1), (20, 2), (30, 3)`);
    await pool.query(`INSERT INTO device_uses VALUES (100, 999)`);
    const options = {
      table: "devices",
      column: "seen_at",
      cascade: [{ table: "device_keys", column: "device_id" }],
      unlessReferencedBy: [{ table: "live_device_uses", column: "device_id" }],
    };
    const result = await runWithWindow(pool, options, () => pool.query(`INSERT INTO device_uses VALUES (101, 3)`));
    expect(result).toMatchObject({ status: "succeeded", processed: 2, tables: { "public.devices": 2, "public.device_keys": 2 } });
    expect(await ids(pool, "devices")).toEqual([3]);
    expect(await ids(pool, "device_keys")).toEqual([30]);
  });
});

describe("the foreign key error of a table already in unlessReferencedBy", () => {
  it("says why its rows still block the delete instead of advising cascade", async () => {
    const pool = db.pool();
    await pool.query(`
      CREATE TABLE owners (id int PRIMARY KEY, left_at timestamptz);
      CREATE TABLE pets (id int PRIMARY KEY, owner_id int REFERENCES owners, died_at timestamptz);`);
    await pool.query(`INSERT INTO owners VALUES (1, $1), (2, $1)`, [OLD]);
    await pool.query(`INSERT INTO pets VALUES (10, 1, NULL), (20, 2, $1)`, [OLD]);
    const options = {
      table: "owners",
      column: "left_at",
      unlessReferencedBy: [{ table: "pets", column: "owner_id", where: { died_at: null } }],
    };
    const result = await run(pool, options, { retention: "30d" });
    expect(result.status).toBe("failed");
    expect(result.error).toMatchInlineSnapshot(
      `"cannot delete rows of public.owners: rows of public.pets still reference them through foreign key "pets_owner_id_fkey" (owner_id); the batch was rolled back, nothing was deleted. public.pets is in unlessReferencedBy[0], but only its rows matching unlessReferencedBy[0].where keep a row; its other rows still block the delete: remove that \`where\`, or let the foreign key clear them (ON DELETE SET NULL or CASCADE)"`,
    );
    expect(await ids(pool, "owners")).toEqual([1, 2]);
  });

  it("names the column to add when the foreign key is on another column of the listed table", async () => {
    const pool = db.pool();
    await pool.query(`
      CREATE TABLE keepers (id int PRIMARY KEY, left_at timestamptz);
      CREATE TABLE zoo_animals (id int PRIMARY KEY, keeper_id int, former_keeper_id int REFERENCES keepers);`);
    await pool.query(`INSERT INTO keepers VALUES (1, $1)`, [OLD]);
    await pool.query(`INSERT INTO zoo_animals VALUES (10, NULL, 1)`);
    const options = { table: "keepers", column: "left_at", unlessReferencedBy: [{ table: "zoo_animals", column: "keeper_id" }] };
    const result = await run(pool, options, { retention: "30d" });
    expect(result.error).toMatchInlineSnapshot(
      `"cannot delete rows of public.keepers: rows of public.zoo_animals still reference them through foreign key "zoo_animals_former_keeper_id_fkey" (former_keeper_id); the batch was rolled back, nothing was deleted. public.zoo_animals is in unlessReferencedBy[0] by keeper_id, but this foreign key is on (former_keeper_id): add { table: public.zoo_animals, column: former_keeper_id } to \`unlessReferencedBy\` too"`,
    );
    expect(await ids(pool, "keepers")).toEqual([1]);
  });
});
