/**
 * From the options to a plan: every table and column the options name,
 * confirmed by the catalog, with the types values are cast to. A name the
 * catalog does not know is a TARGET error (exit 2); options that cannot work
 * together or with the schema are CONFIG errors (exit 2).
 */
import {
  assertUniqueKey,
  findColumn,
  PurgerError,
  loadTables,
  parseTableName,
  similarTables,
  type ColumnInfo,
  type Queryable,
  type TableInfo,
  type TableRef,
} from "@purger/core";
import type { ColumnFormat, RetentionOptions, Scalar, Where } from "./options.js";

export interface Condition {
  column: ColumnInfo;
  value: Scalar | null | Array<Scalar | null>;
}

export type Assignment = { column: ColumnInfo; value: Scalar | null } | { column: ColumnInfo; now: true };

export interface Plan {
  table: TableInfo;
  clock: ColumnInfo;
  format: ColumnFormat;
  /** The zone `timestamp` and `date` values (the clock, `{ now: true }` columns) are written in. */
  timeZone: string;
  /** The unique key (one or more columns). */
  keys: ColumnInfo[];
  /** The keyset order: the clock, then the key columns other than the clock. */
  order: ColumnInfo[];
  where: Condition[];
  action: "delete" | "update";
  set: Assignment[];
  referencedBy: Array<{ table: TableInfo; column: ColumnInfo; references: ColumnInfo; where: Condition[] }>;
  references: Array<{ column: ColumnInfo; table: TableInfo; key: ColumnInfo; where: Condition[] }>;
  /** `parent`: index of the cascade entry this one hangs off, or null for the entry's table. */
  cascade: Array<{ table: TableInfo; column: ColumnInfo; parent: number | null; references: ColumnInfo }>;
  keepLatest: { count: number; per: ColumnInfo[] } | null;
}

const TIMESTAMP_TYPES = new Set(["timestamptz", "timestamp", "date"]);
const TEXT_TYPES = new Set(["text", "varchar", "bpchar"]);

export async function resolvePlan(db: Queryable, options: RetentionOptions, entryId: string): Promise<Plan> {
  const where = (path: string) => `entry "${entryId}", options.${path}`;
  const format = options.columnFormat ?? "timestamp";
  const action = options.action ?? "delete";

  // Every table named, looked up in one round trip.
  const named: Array<{ text: string; path: string }> = [{ text: options.table, path: "table" }];
  (options.unlessReferencedBy ?? []).forEach((r, i) => named.push({ text: r.table, path: `unlessReferencedBy[${i}].table` }));
  (options.unlessReferences ?? []).forEach((r, i) => named.push({ text: r.table, path: `unlessReferences[${i}].table` }));
  (options.cascade ?? []).forEach((c, i) => named.push({ text: c.table, path: `cascade[${i}].table` }));
  (options.cascade ?? []).forEach((c, i) => {
    if (c.parent !== undefined) named.push({ text: c.parent, path: `cascade[${i}].parent` });
  });
  const refs = named.map(({ text, path }) => {
    const ref = parseTableName(text);
    if (!ref) {
      throw new PurgerError("CONFIG", `"${text}" is not a table name (${where(path)})`, {
        hint: 'write `name` or `schema.name`; double-quote a part that holds a dot: `"my.schema".table`',
      });
    }
    return ref;
  });
  const tables = await loadTables(db, refs);
  /** The table named at an option path (`table`, `cascade[1].table` …); TARGET error when it does not exist. */
  const tableAt = async (path: string): Promise<TableInfo> => {
    const i = named.findIndex((n) => n.path === path);
    const found = tables[i];
    if (found) return found;
    throw await missingTable(db, refs[i]!, where(path));
  };
  const table = await tableAt("table");
  requireTable(table, where("table"));

  const clock = column(table, options.column, where("column"));
  checkFormat(table, clock, format, where("columnFormat"));
  const timeZone = await resolveTimeZone(db, options.timeZone ?? "UTC", where("timeZone"));
  const keys = await resolveKeys(db, table, options.key, where("key"));
  const order = [clock, ...keys.filter((k) => k !== clock)];
  const conditions = (t: TableInfo, map: Where | undefined, path: string): Condition[] =>
    Object.entries(map ?? {}).map(([name, value]) => {
      const c = column(t, name, where(`${path}.${name}`));
      for (const v of Array.isArray(value) ? value : [value]) checkLabel(c, v, where(`${path}.${name}`));
      return { column: c, value };
    });

  const set: Assignment[] = [];
  if (action === "update") {
    if (!options.set || Object.keys(options.set).length === 0) {
      throw new PurgerError("CONFIG", `action "update" needs \`set\` (${where("set")})`, { hint: "set: { last_active_ip: null }" });
    }
    for (const [name, value] of Object.entries(options.set)) {
      const c = column(table, name, where(`set.${name}`));
      if (keys.includes(c)) throw new PurgerError("CONFIG", `\`set\` cannot change the key column "${name}" (${where(`set.${name}`)})`);
      if (value !== null && typeof value === "object") {
        if (!TIMESTAMP_TYPES.has(c.type.base)) {
          throw new PurgerError(
            "CONFIG",
            `{ now: true } needs a timestamptz, timestamp or date column; "${name}" is ${c.type.name} (${where(`set.${name}`)})`,
          );
        }
        set.push({ column: c, now: true });
      } else {
        checkLabel(c, value, where(`set.${name}`));
        set.push({ column: c, value });
      }
    }
  } else if (options.set) {
    throw new PurgerError("CONFIG", `\`set\` is only used with action: update (${where("set")})`, {
      hint: "add `action: update`, or remove `set`",
    });
  }

  const referencedBy = [];
  for (const [i, r] of (options.unlessReferencedBy ?? []).entries()) {
    const path = `unlessReferencedBy[${i}]`;
    const t = await tableAt(`${path}.table`);
    const c = column(t, r.column, where(`${path}.column`));
    const references =
      r.references === undefined
        ? singleKey(keys, table, where(`${path}.references`))
        : column(table, r.references, where(`${path}.references`));
    compatible(c, references, where(path));
    referencedBy.push({ table: t, column: c, references, where: conditions(t, r.where, `${path}.where`) });
  }

  const references = [];
  for (const [i, r] of (options.unlessReferences ?? []).entries()) {
    const path = `unlessReferences[${i}]`;
    const c = column(table, r.column, where(`${path}.column`));
    const t = await tableAt(`${path}.table`);
    const key = r.key === undefined ? singleKey(t.primaryKey ?? [], t, where(`${path}.key`)) : column(t, r.key, where(`${path}.key`));
    compatible(c, key, where(path));
    references.push({ column: c, table: t, key, where: conditions(t, r.where, `${path}.where`) });
  }

  const cascadeTables: TableInfo[] = [];
  for (const [i] of (options.cascade ?? []).entries()) {
    const t = await tableAt(`cascade[${i}].table`);
    requireTable(t, where(`cascade[${i}].table`));
    cascadeTables.push(t);
  }
  const cascade: Plan["cascade"] = [];
  if (cascadeTables.length > 0 && action !== "delete") {
    throw new PurgerError("CONFIG", `\`cascade\` is only used with action: delete (${where("cascade")})`);
  }
  for (const [i, c] of (options.cascade ?? []).entries()) {
    const path = `cascade[${i}]`;
    const t = cascadeTables[i]!;
    let parent: number | null = null;
    if (c.parent !== undefined) {
      const parentTable = await tableAt(`${path}.parent`);
      const matches = cascadeTables.flatMap((ct, j) => (ct.oid === parentTable.oid ? [j] : []));
      if (matches.length !== 1) {
        throw new PurgerError(
          "CONFIG",
          `cascade parent "${c.parent}" must be the table of exactly one other cascade entry; it is of ${matches.length} (${where(`${path}.parent`)})`,
          {
            hint: "a cascade entry hangs off the entry's table (no `parent`) or off another cascade entry's table",
          },
        );
      }
      parent = matches[0]!;
      if (parent <= i) {
        throw new PurgerError(
          "CONFIG",
          `cascade[${i}] (${t.display}) hangs off cascade[${parent}] (${parentTable.display}), which would be deleted before it (${where(`${path}.parent`)})`,
          {
            hint: "cascade entries are deleted in the order listed: list a grandchild before its parent",
          },
        );
      }
    }
    const parentTable = parent === null ? table : cascadeTables[parent]!;
    const col = column(t, c.column, where(`${path}.column`));
    const refPath = where(`${path}.references`);
    const parentKeys = parent === null ? keys : (parentTable.primaryKey ?? []);
    const refCol = c.references === undefined ? singleKey(parentKeys, parentTable, refPath) : column(parentTable, c.references, refPath);
    compatible(col, refCol, where(path));
    cascade.push({ table: t, column: col, parent, references: refCol });
  }

  let keepLatest: Plan["keepLatest"] = null;
  if (options.keepLatest) {
    const per =
      options.keepLatest.per === undefined ? [] : Array.isArray(options.keepLatest.per) ? options.keepLatest.per : [options.keepLatest.per];
    keepLatest = { count: options.keepLatest.count, per: per.map((name) => column(table, name, where(`keepLatest.per`))) };
  }

  return {
    table,
    clock,
    format,
    timeZone,
    keys,
    order,
    where: conditions(table, options.where, "where"),
    action,
    set,
    referencedBy,
    references,
    cascade,
    keepLatest,
  };
}

async function missingTable(db: Queryable, ref: TableRef, where: string): Promise<PurgerError> {
  const similar = await similarTables(db, ref);
  const shown = ref.schema === null ? ref.name : `${ref.schema}.${ref.name}`;
  const searched = ref.schema === null ? " in the search_path" : "";
  return new PurgerError("TARGET", `table "${shown}" does not exist${searched} (${where})`, {
    hint:
      similar.length > 0
        ? `did you mean ${similar.map((s) => `"${s}"`).join(" or ")}? Names are matched exactly (case and spaces included)`
        : "check the table name and the database purger connects to (`purger doctor`)",
  });
}

function requireTable(table: TableInfo, where: string): void {
  if (table.kind !== "r" && table.kind !== "p") {
    throw new PurgerError("CONFIG", `${table.display} is not a table (relkind ${table.kind}) (${where})`, {
      hint: "name the table itself, not a view",
    });
  }
}

function column(table: TableInfo, name: string, where: string): ColumnInfo {
  const found = findColumn(table, name);
  if (found) return found;
  const lower = [...table.columns.keys()].filter((c) => c.toLowerCase() === name.toLowerCase());
  throw new PurgerError("TARGET", `column "${name}" does not exist in table ${table.display} (${where})`, {
    hint: lower.length > 0 ? `did you mean "${lower[0]}"?` : `its columns are: ${[...table.columns.keys()].join(", ")}`,
  });
}

/** A value for an enum column must be one of its labels (caught here rather than by the first batch). */
function checkLabel(column: ColumnInfo, value: Scalar | null, where: string): void {
  const labels = column.type.labels;
  if (!labels || value === null || labels.includes(String(value))) return;
  throw new PurgerError("CONFIG", `"${String(value)}" is not a value of enum ${column.type.name} (${where})`, {
    hint: `its values are: ${labels.join(", ")}`,
  });
}

function checkFormat(table: TableInfo, clock: ColumnInfo, format: ColumnFormat, where: string): void {
  const base = clock.type.base;
  const ok =
    format === "timestamp"
      ? TIMESTAMP_TYPES.has(base)
      : format === "epoch" || format === "epochMs"
        ? clock.type.category === "N"
        : base === "uuid" || TEXT_TYPES.has(base);
  if (ok) return;
  const suggestion =
    clock.type.category === "N"
      ? "columnFormat: epoch (seconds) or epochMs (milliseconds)"
      : base === "uuid" || TEXT_TYPES.has(base)
        ? "columnFormat: ulid or uuidv7 (time in the first 48 bits)"
        : TIMESTAMP_TYPES.has(base)
          ? "columnFormat: timestamp (the default)"
          : "a timestamptz, timestamp, date, numeric, uuid or text clock column";
  throw new PurgerError(
    "CONFIG",
    `columnFormat "${format}" cannot read column ${table.display}.${clock.name} of type ${clock.type.name} (${where})`,
    {
      hint: `use ${suggestion}`,
    },
  );
}

/** The zone must be one PostgreSQL knows by its IANA name: an abbreviation or a POSIX offset (`UTC+3`, sign inverted) is refused. */
async function resolveTimeZone(db: Queryable, zone: string, where: string): Promise<string> {
  if (zone === "UTC") return zone;
  const found = await db.query<{ known: boolean; similar: string[] }>(
    `SELECT bool_or(z.name = $1) AS known,
            coalesce(array_agg(z.name ORDER BY z.name) FILTER (WHERE lower(z.name) = lower($1)), '{}') AS similar
       FROM pg_catalog.pg_timezone_names z`,
    [zone],
  );
  const row = found.rows[0];
  if (row?.known) return zone;
  const similar = row?.similar ?? [];
  throw new PurgerError("CONFIG", `time zone "${zone}" is not an IANA zone name PostgreSQL knows (${where})`, {
    hint:
      similar.length > 0
        ? `did you mean ${similar.map((s) => `"${s}"`).join(" or ")}?`
        : "name the zone the column's values are written in, as in pg_timezone_names: Europe/Berlin, America/New_York, UTC",
  });
}

async function resolveKeys(db: Queryable, table: TableInfo, key: string | string[] | undefined, where: string): Promise<ColumnInfo[]> {
  if (key === undefined) {
    if (!table.primaryKey || table.primaryKey.length === 0) {
      throw new PurgerError("CONFIG", `table ${table.display} has no primary key: set \`key\` (${where})`, {
        hint: "key: a unique NOT NULL column (or a list of columns) identifying a row",
      });
    }
    return table.primaryKey;
  }
  const keys = (Array.isArray(key) ? key : [key]).map((name) => column(table, name, where));
  await assertUniqueKey(db, { table: { schema: table.schema, name: table.name }, columns: keys.map((k) => k.name), option: "key" });
  return keys;
}

function singleKey(keys: ColumnInfo[], table: TableInfo, where: string): ColumnInfo {
  if (keys.length === 1) return keys[0]!;
  throw new PurgerError(
    "CONFIG",
    `${table.display} has ${keys.length === 0 ? "no primary key" : "a key of several columns"}: name the referenced column (${where})`,
  );
}

function compatible(a: ColumnInfo, b: ColumnInfo, where: string): void {
  if (a.type.category === b.type.category) return;
  throw new PurgerError(
    "CONFIG",
    `column "${a.name}" (${a.type.name}) cannot reference "${b.name}" (${b.type.name}): different kinds of types (${where})`,
  );
}
