/**
 * `prepare`: the entry resolved against the live catalog (every table and
 * column confirmed and quoted) and its revoker built. Missing tables or
 * columns are `PurgerError("TARGET")`, so `purger validate`/`doctor` and every
 * run stop before touching anything.
 */
import { keyColumn, loadTable, PurgerError, requireColumn, type ColumnInfo, type PluginContext, type TableInfo } from "@purger/core";
import { credentialStatuses, type CertsOptions, type CredentialStatuses, type Statuses } from "./options.js";
import { loadModuleRevoker, type Revoker } from "./revoker.js";
import { createTableRevoker, loadRevocationTable, type RevocationTable } from "./table-revoker.js";
import { createWebhookRevoker } from "./webhook-revoker.js";

export interface CertificatesTarget {
  table: TableInfo;
  key: ColumnInfo;
  serial: ColumnInfo;
  notAfter: ColumnInfo;
  status: ColumnInfo;
  reason: ColumnInfo | null;
}

export interface CredentialsTarget {
  table: TableInfo;
  key: ColumnInfo;
  /** Columns holding a certificate's key. */
  references: ColumnInfo[];
  status: ColumnInfo;
  expiresAt: ColumnInfo | null;
}

export interface CertsState {
  certificates: CertificatesTarget;
  credentials: CredentialsTarget | null;
  statuses: Statuses;
  credentialStatuses: Required<CredentialStatuses>;
  revoker: Revoker;
  /** Where `timestamp` and `date` expiry columns keep their wall-clock time (IANA name). */
  timeZone: string;
  /** Set for the `table` revoker (for `check`). */
  revocations: RevocationTable | null;
}

const CLOCK_TYPES = new Set(["timestamptz", "timestamp", "date"]);

export async function prepareState(ctx: PluginContext<CertsOptions>): Promise<CertsState> {
  const { options, pool } = ctx;
  await requireTimeZone(pool, options.timeZone);
  const certificates = await loadCertificates(ctx);
  const credentials = options.credentials ? await loadCredentials(ctx) : null;

  let revocations: RevocationTable | null = null;
  let revoker: Revoker;
  const spec = options.revoker;
  if ("table" in spec) {
    revocations = await loadRevocationTable(pool, spec.table);
    revoker = createTableRevoker(revocations);
  } else if ("webhook" in spec) {
    revoker = createWebhookRevoker(spec.webhook);
  } else {
    revoker = await loadModuleRevoker(spec.module, {
      options: spec.options ?? {},
      pool,
      log: ctx.log.child({ revoker: spec.module }),
      entry: ctx.entry,
    });
  }
  return {
    certificates,
    credentials,
    statuses: options.statuses,
    credentialStatuses: credentialStatuses(options),
    revoker,
    revocations,
    timeZone: options.timeZone,
  };
}

async function loadCertificates(ctx: PluginContext<CertsOptions>): Promise<CertificatesTarget> {
  const o = ctx.options.certificates;
  const table = await loadTable(ctx.pool, o.table, { where: "options.certificates.table" });
  const target: CertificatesTarget = {
    table,
    key: await keyColumn(ctx.pool, table, o.key, "certificates.key"),
    serial: requireColumn(table, o.serial, "options.certificates.serial"),
    notAfter: requireColumn(table, o.notAfter, "options.certificates.notAfter"),
    status: requireColumn(table, o.status, "options.certificates.status"),
    reason: o.reason === undefined ? null : requireColumn(table, o.reason, "options.certificates.reason"),
  };
  requireClock(target.notAfter, "certificates.notAfter", table);
  return target;
}

async function loadCredentials(ctx: PluginContext<CertsOptions>): Promise<CredentialsTarget> {
  const o = ctx.options.credentials!;
  const table = await loadTable(ctx.pool, o.table, { where: "options.credentials.table" });
  const target: CredentialsTarget = {
    table,
    key: await keyColumn(ctx.pool, table, o.key, "credentials.key"),
    references: o.certificates.map((name, i) => requireColumn(table, name, `options.credentials.certificates[${i}]`)),
    status: requireColumn(table, o.status, "options.credentials.status"),
    expiresAt: o.expiresAt === undefined ? null : requireColumn(table, o.expiresAt, "options.credentials.expiresAt"),
  };
  if (target.expiresAt) requireClock(target.expiresAt, "credentials.expiresAt", table);
  return target;
}

function requireClock(column: ColumnInfo, what: string, table: TableInfo): void {
  if (!CLOCK_TYPES.has(column.type.base)) {
    throw new PurgerError(
      "TARGET",
      `options.${what}: column ${column.name} of ${table.display} is ${column.type.display}, expected timestamptz, timestamp or date`,
    );
  }
}

/** PostgreSQL's own zone database decides: the comparison runs there. */
async function requireTimeZone(pool: PluginContext<CertsOptions>["pool"], zone: string): Promise<void> {
  try {
    await pool.query("SELECT now() AT TIME ZONE $1::text", [zone]);
  } catch (error) {
    if ((error as { code?: string }).code !== "22023") throw error;
    throw new PurgerError("CONFIG", `options.timeZone: PostgreSQL does not know the time zone ${JSON.stringify(zone)}`, {
      hint: "an IANA name such as UTC, Europe/Berlin or America/Los_Angeles (SELECT name FROM pg_timezone_names)",
    });
  }
}
