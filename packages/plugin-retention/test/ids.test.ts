import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { column, DAY, NOW, run, useDatabase } from "./fixtures.js";

const db = useDatabase("retention_ids");
const CUTOFF = NOW.getTime() - DAY;
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID (canonical text) for `ms`, with the random part from `random` (10 bytes) — written here independently of the plugin. */
function ulid(ms: number, random: Buffer = randomBytes(10)): string {
  let n = (BigInt(ms) << 80n) | BigInt(`0x${random.toString("hex")}`);
  let text = "";
  for (let i = 0; i < 26; i += 1) {
    text = CROCKFORD[Number(n & 31n)] + text;
    n >>= 5n;
  }
  return text;
}

/** The same 128 bits as a uuid (how the Matrix Authentication Service stores ULIDs). */
function ulidAsUuid(ms: number, random: Buffer = randomBytes(10)): string {
  return hexUuid(ms.toString(16).padStart(12, "0") + random.toString("hex"));
}

/** A UUIDv7 for `ms`. */
function uuidv7(ms: number, random: Buffer = randomBytes(10)): string {
  const r = random.toString("hex");
  const variant = ((parseInt(r[3]!, 16) & 0x3) | 0x8).toString(16);
  return hexUuid(`${ms.toString(16).padStart(12, "0")}7${r.slice(0, 3)}${variant}${r.slice(4, 19)}`);
}

function hexUuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const MIN = Buffer.alloc(10, 0);
const MAX = Buffer.alloc(10, 0xff);

/** Ids at known times: the oldest qualify, everything at or after the cutoff stays. */
function generate(make: (ms: number, random?: Buffer) => string): { old: string[]; kept: string[] } {
  const old = [make(CUTOFF - 1, MAX), make(CUTOFF - 1, MIN), make(CUTOFF - 1), make(CUTOFF - 1000), make(CUTOFF - 40 * DAY)];
  const kept = [make(CUTOFF, MIN), make(CUTOFF), make(CUTOFF + 1, MIN), make(CUTOFF + 1), make(NOW.getTime())];
  return { old, kept };
}

describe.each([
  { format: "ulid", type: "text", make: ulid },
  { format: "ulid", type: "uuid", make: ulidAsUuid },
  { format: "uuidv7", type: "uuid", make: uuidv7 },
  { format: "uuidv7", type: "text", make: uuidv7 },
])("columnFormat $format in a $type column", ({ format, type, make }) => {
  it("the time is the first 48 bits: ids 1 ms before the cutoff go, ids at and after it stay", async () => {
    const pool = db.pool();
    const table = `ids_${format}_${type}`;
    await pool.query(`CREATE TABLE ${table} (id ${type} PRIMARY KEY, note text)`);
    const { old, kept } = generate(make);
    await pool.query(`INSERT INTO ${table} (id) SELECT unnest($1::text[])::${type}`, [[...old, ...kept]]);
    const dry = await run(pool, { table, column: "id", columnFormat: format }, { batchSize: 2, dryRun: true });
    expect(dry).toMatchObject({ status: "succeeded", processed: old.length });
    expect(dry.sample).toEqual([...old].sort());
    const result = await run(pool, { table, column: "id", columnFormat: format }, { batchSize: 2 });
    expect(result).toMatchObject({ status: "succeeded", processed: old.length });
    expect(await column(pool, `SELECT id::text FROM ${table} ORDER BY id`)).toEqual([...kept].sort());
  });
});

describe("the clock as a ULID column beside the key", () => {
  it("a text ULID column that is not the key, with a where condition", async () => {
    const pool = db.pool();
    await pool.query(`CREATE TABLE recovery (id serial PRIMARY KEY, ulid text NOT NULL, kind text)`);
    await pool.query(`INSERT INTO recovery (ulid, kind) VALUES ($1, 'a'), ($2, 'a'), ($3, 'b'), ($4, 'a')`, [
      ulid(CUTOFF - 5),
      ulid(CUTOFF),
      ulid(CUTOFF - 9),
      ulid(CUTOFF - 1),
    ]);
    expect(
      await run(pool, { table: "recovery", column: "ulid", columnFormat: "ulid", where: { kind: "a" } }, { batchSize: 1 }),
    ).toMatchObject({ processed: 2 });
    expect(await column(pool, `SELECT id FROM recovery ORDER BY id`)).toEqual([2, 3]);
  });
});
