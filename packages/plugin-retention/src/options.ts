/**
 * The options of one retention entry (these names are a contract: the README
 * documents them). Described once as a JSON Schema, which purger validates
 * every entry against (defaults applied), and as the TypeScript type of the
 * validated value; `defineSchema` makes the compiler check that the two agree.
 */
import { defineSchema, type TypedSchema } from "@purger/core";

/** A value of a `where` or `set` map; compared in (cast to) the column's own type. */
export type Scalar = string | number | boolean;

/** `column → value`: a scalar is `=`, `null` is `IS NULL`, a list is `IN (…)`. */
export type Where = Record<string, Scalar | null | Array<Scalar | null>>;

/** How the clock `column` encodes time. */
export type ColumnFormat = "timestamp" | "epoch" | "epochMs" | "ulid" | "uuidv7";

/** `{ now: true }`: the run's start time, the same for every batch of the run. */
export interface Now {
  now: true;
}

export interface UnlessReferencedBy {
  /** The referencing table (`name` or `schema.name`). */
  table: string;
  /** Its column holding the key of the row to delete. */
  column: string;
  /** The column of the entry's table that `column` holds. @defaultValue the entry's single-column `key` */
  references?: string;
  /** Only referencing rows matching this count. */
  where?: Where;
}

export interface UnlessReferences {
  /** The column of the entry's table that points to another row. */
  column: string;
  /** The table it points to. */
  table: string;
  /** The column of `table` that `column` holds. @defaultValue the primary key of `table` */
  key?: string;
  /** The row is kept while the row it points to matches this (`{}`: while it exists). */
  where: Where;
}

export interface Cascade {
  /** The child table. */
  table: string;
  /** Its column holding the key of its parent row. */
  column: string;
  /**
   * The parent: the `table` of another cascade entry listed after this one
   * (a grandchild is deleted before its parent). @defaultValue the entry's table
   */
  parent?: string;
  /** The column of the parent that `column` holds. @defaultValue the parent's single-column primary key */
  references?: string;
}

export interface KeepLatest {
  /** How many of the newest rows (by `column`, then `key`) are never touched. */
  count: number;
  /** Keep `count` rows per distinct value of these columns instead of overall. */
  per?: string | string[];
}

export interface RetentionOptions {
  /** The table: `name` (searched in the search_path) or `schema.name`; double-quote a part holding a dot. */
  table: string;
  /** The clock: a row qualifies when `column < cutoff`; NULL never qualifies. */
  column: string;
  /** The unique, NOT NULL key (one column or several). @defaultValue the table's primary key */
  key?: string | string[];
  /** How `column` encodes time. @defaultValue "timestamp" */
  columnFormat: ColumnFormat;
  /**
   * The zone a `timestamp` (without time zone) or `date` clock's values are
   * written in (an IANA name PostgreSQL knows); the cutoff is compared in it.
   * No effect on a `timestamptz` clock. @defaultValue "UTC"
   */
  timeZone: string;
  /** Every listed condition must hold for a row to qualify. */
  where?: Where;
  /** What happens to a qualifying row. @defaultValue "delete" */
  action: "delete" | "update";
  /** With `action: update`: the new values. Rows already in that state do not qualify. */
  set?: Record<string, Scalar | null | Now>;
  /** A row qualifies only if no row of these tables references it. */
  unlessReferencedBy?: UnlessReferencedBy[];
  /** A row is kept while the row it points to matches a condition. */
  unlessReferences?: UnlessReferences[];
  /** Child rows deleted with their parent, first, in the order listed. */
  cascade?: Cascade[];
  /** Never touch the newest rows. */
  keepLatest?: KeepLatest;
}

const whereSchema = {
  type: "object",
  description: "column → value: a scalar is `=`, null is `IS NULL`, a list is `IN (…)`; compared in the column's own type",
  additionalProperties: {
    anyOf: [
      { type: ["string", "number", "boolean", "null"] },
      { type: "array", minItems: 1, items: { type: ["string", "number", "boolean", "null"] } },
    ],
  },
} as const;
const name = { type: "string", minLength: 1 } as const;

/** The JSON Schema of `options` (draft-07, as ajv reads it). */
export const optionsSchema: TypedSchema<RetentionOptions> = defineSchema({
  type: "object",
  additionalProperties: false,
  required: ["table", "column"],
  properties: {
    table: { ...name, description: "`name` or `schema.name` (double-quote a part holding a dot)" },
    column: { ...name, description: "the clock: a row qualifies when column < cutoff; NULL never qualifies" },
    key: {
      description: "unique NOT NULL key; default: the primary key",
      anyOf: [name, { type: "array", minItems: 1, uniqueItems: true, items: name }],
    },
    columnFormat: {
      type: "string",
      enum: ["timestamp", "epoch", "epochMs", "ulid", "uuidv7"],
      default: "timestamp",
      description: "timestamp (timestamptz/timestamp/date), epoch / epochMs (numbers), ulid / uuidv7 (time in the first 48 bits)",
    },
    timeZone: {
      ...name,
      default: "UTC",
      description: "the IANA zone a timestamp (without time zone) or date clock is written in, e.g. Europe/Berlin",
    },
    where: whereSchema,
    action: { type: "string", enum: ["delete", "update"], default: "delete" },
    set: {
      type: "object",
      minProperties: 1,
      description: "with action: update — column → value, null, or { now: true } (the run's start time)",
      additionalProperties: {
        anyOf: [
          { type: ["string", "number", "boolean", "null"] },
          { type: "object", additionalProperties: false, required: ["now"], properties: { now: { const: true } } },
        ],
      },
    },
    unlessReferencedBy: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["table", "column"],
        properties: { table: name, column: name, references: name, where: whereSchema },
      },
    },
    unlessReferences: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["column", "table", "where"],
        properties: { column: name, table: name, key: name, where: whereSchema },
      },
    },
    cascade: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["table", "column"],
        properties: { table: name, column: name, parent: name, references: name },
      },
    },
    keepLatest: {
      type: "object",
      additionalProperties: false,
      required: ["count"],
      properties: {
        count: { type: "integer", minimum: 1 },
        per: { anyOf: [name, { type: "array", minItems: 1, uniqueItems: true, items: name }] },
      },
    },
  },
  allOf: [
    // `set` belongs to `action: update`, and `cascade` to `action: delete`.
    { if: { properties: { action: { const: "update" } }, required: ["action"] }, then: { required: ["set"] } },
    { if: { required: ["set"] }, then: { required: ["action"], properties: { action: { const: "update" } } } },
    { if: { required: ["cascade"] }, then: { properties: { action: { const: "delete" } } } },
  ],
});
