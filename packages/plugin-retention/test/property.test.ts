/**
 * The safety invariants (never newer than the cutoff, never outside the table) over random data, batch sizes and options:
 * nothing within the window or protected by a condition is deleted, and
 * nothing that qualifies remains — compared with a reference computed here.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ids, NOW, run, useDatabase } from "./fixtures.js";

const db = useDatabase("retention_property");
const HOUR = 3_600_000;
const CUTOFF = NOW.getTime() - 24 * HOUR;

interface Row {
  id: number;
  /** Hours before NOW (few distinct values, so ties are common), or null. */
  age: number | null;
  grp: number | null;
  flag: boolean;
}
interface Child {
  parent: number;
  active: boolean;
}
interface Options {
  where: null | "flag" | "grp";
  referencedBy: null | "any" | "active";
  keepLatest: null | { count: number; perGroup: boolean };
}

const rowArb = fc.record({
  age: fc.option(fc.constantFrom(0, 6, 23, 24, 25, 36, 48, 72, 100), { nil: null, freq: 6 }),
  grp: fc.option(fc.integer({ min: 0, max: 2 }), { nil: null, freq: 4 }),
  flag: fc.boolean(),
});
const optionsArb: fc.Arbitrary<Options> = fc.record({
  where: fc.constantFrom(null, "flag" as const, "grp" as const),
  referencedBy: fc.constantFrom(null, "any" as const, "active" as const),
  keepLatest: fc.option(fc.record({ count: fc.integer({ min: 1, max: 3 }), perGroup: fc.boolean() }), { nil: null }),
});

/** Which rows the options make qualify, computed without SQL. */
function reference(rows: Row[], children: Child[], o: Options): Set<number> {
  const matches = (r: Row) => (o.where === "flag" ? r.flag : o.where === "grp" ? r.grp === 0 || r.grp === null : true);
  const time = (r: Row) => NOW.getTime() - r.age! * HOUR;
  const qualifying = new Set<number>();
  for (const r of rows) {
    if (r.age === null || time(r) >= CUTOFF || !matches(r)) continue;
    if (o.referencedBy && children.some((c) => c.parent === r.id && (o.referencedBy === "any" || c.active))) continue;
    if (o.keepLatest) {
      const { count, perGroup } = o.keepLatest;
      const newer = rows.filter(
        (s) =>
          s.age !== null && matches(s) && (!perGroup || s.grp === r.grp) && (time(s) > time(r) || (time(s) === time(r) && s.id > r.id)),
      );
      if (newer.length < count) continue;
    }
    qualifying.add(r.id);
  }
  return qualifying;
}

function pluginOptions(o: Options): Record<string, unknown> {
  return {
    table: "items",
    column: "at",
    ...(o.where === "flag" ? { where: { flag: true } } : o.where === "grp" ? { where: { grp: [0, null] } } : {}),
    ...(o.referencedBy
      ? {
          unlessReferencedBy: [
            { table: "children", column: "item_id", ...(o.referencedBy === "active" ? { where: { active: true } } : {}) },
          ],
        }
      : {}),
    ...(o.keepLatest ? { keepLatest: { count: o.keepLatest.count, ...(o.keepLatest.perGroup ? { per: "grp" } : {}) } } : {}),
  };
}

describe("property: exactly the qualifying rows go", () => {
  it("holds for random rows, references, options and batch sizes (dry run counts the same)", async () => {
    const pool = db.pool();
    await pool.query(`
      CREATE TABLE items (id int PRIMARY KEY, at timestamptz, grp int, flag boolean NOT NULL);
      CREATE INDEX ON items (at);
      CREATE TABLE children (id serial PRIMARY KEY, item_id int, active boolean NOT NULL);`);
    await fc.assert(
      fc.asyncProperty(
        fc.array(rowArb, { maxLength: 30 }),
        fc.array(fc.record({ parent: fc.nat(), active: fc.boolean() }), { maxLength: 10 }),
        optionsArb,
        fc.integer({ min: 1, max: 7 }),
        async (generated, rawChildren, o, batchSize) => {
          const rows: Row[] = generated.map((r, i) => ({ id: i + 1, ...r }));
          const children = rawChildren.map((c) => ({ parent: rows.length === 0 ? 0 : (c.parent % rows.length) + 1, active: c.active }));
          await pool.query(`TRUNCATE items, children`);
          await pool.query(
            `INSERT INTO items SELECT u.id, $5::timestamptz - u.age * interval '1 hour', u.grp, u.flag
               FROM unnest($1::int[], $2::int[], $3::int[], $4::boolean[]) AS u(id, age, grp, flag)`,
            [rows.map((r) => r.id), rows.map((r) => r.age), rows.map((r) => r.grp), rows.map((r) => r.flag), NOW.toISOString()],
          );
          await pool.query(`INSERT INTO children (item_id, active) SELECT * FROM unnest($1::int[], $2::boolean[])`, [
            children.map((c) => c.parent),
            children.map((c) => c.active),
          ]);

          const expected = reference(rows, children, o);
          const dry = await run(pool, pluginOptions(o), { batchSize, dryRun: true });
          expect(dry).toMatchObject({ status: "succeeded", processed: expected.size });
          const result = await run(pool, pluginOptions(o), { batchSize });
          expect(result).toMatchObject({ status: "succeeded", processed: expected.size });
          expect(await ids(pool, "items")).toEqual(rows.map((r) => r.id).filter((id) => !expected.has(id)));
        },
      ),
      { numRuns: 40 },
    );
  });
});
