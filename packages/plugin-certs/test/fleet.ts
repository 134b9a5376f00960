/**
 * The IoT fleet's tables, one schema per test: robot certificates, the
 * provisioning credentials that reference them, a revocations table (the
 * `table` revoker's target) and a third party's ledger.
 */
import type { Logger } from "@purger/core/host";
import type pg from "pg";

let sequence = 0;

export interface Fleet {
  schema: string;
  /** `schema.table`. */
  t(table: string): string;
}

export async function createFleet(pool: pg.Pool, options: { uniqueRevocations?: boolean } = {}): Promise<Fleet> {
  const schema = `fleet_${process.pid}_${++sequence}`;
  await pool.query(`
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.certificates (
      id bigint PRIMARY KEY,
      serial text,
      not_after timestamp(3) with time zone,
      status text NOT NULL DEFAULT 'active',
      revoke_reason text
    );
    CREATE INDEX ON ${schema}.certificates (not_after);
    CREATE TABLE ${schema}.credentials (
      id bigint PRIMARY KEY,
      robot_certificate_id bigint REFERENCES ${schema}.certificates,
      ca_certificate_id bigint REFERENCES ${schema}.certificates,
      status text NOT NULL DEFAULT 'active',
      expires_at timestamp without time zone
    );
    CREATE TABLE ${schema}.revocations (
      serial text NOT NULL ${options.uniqueRevocations === false ? "" : "UNIQUE"},
      reason text NOT NULL,
      revoked_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ${schema}.revocation_ledger (serial text, reason text, idempotency_key text);
  `);
  return { schema, t: (table) => `${schema}.${table}` };
}

/** Certificates: `[id, serial, not_after offset from now in hours (null: none), status]`. */
export async function addCertificates(
  pool: pg.Pool,
  fleet: Fleet,
  rows: Array<[number, string | null, number | null, string?]>,
): Promise<void> {
  for (const [id, serial, hours, status] of rows) {
    await pool.query(
      `INSERT INTO ${fleet.t("certificates")} (id, serial, not_after, status)
       VALUES ($1, $2, CASE WHEN $3::float8 IS NULL THEN NULL ELSE now() + $3::float8 * interval '1 hour' END, $4)`,
      [id, serial, hours, status ?? "active"],
    );
  }
}

/** Credentials: `[id, robot certificate, ca certificate, expires_at offset in hours (null: none), status]`; expires_at is UTC wall-clock time. */
export async function addCredentials(
  pool: pg.Pool,
  fleet: Fleet,
  rows: Array<[number, number | null, number | null, number | null, string?]>,
): Promise<void> {
  for (const [id, robot, ca, hours, status] of rows) {
    await pool.query(
      `INSERT INTO ${fleet.t("credentials")} (id, robot_certificate_id, ca_certificate_id, expires_at, status)
       VALUES ($1, $2, $3, CASE WHEN $4::float8 IS NULL THEN NULL ELSE (now() AT TIME ZONE 'UTC') + $4::float8 * interval '1 hour' END, $5)`,
      [id, robot, ca, hours, status ?? "active"],
    );
  }
}

export async function statuses(pool: pg.Pool, fleet: Fleet, table: "certificates" | "credentials"): Promise<Record<number, string>> {
  const { rows } = await pool.query<{ id: string; status: string }>(`SELECT id::text, status FROM ${fleet.t(table)} ORDER BY id`);
  return Object.fromEntries(rows.map((r) => [Number(r.id), r.status]));
}

export async function revocations(pool: pg.Pool, fleet: Fleet, table = "revocations"): Promise<Array<{ serial: string; reason: string }>> {
  const { rows } = await pool.query<{ serial: string; reason: string }>(`SELECT serial, reason FROM ${fleet.t(table)} ORDER BY serial`);
  return rows;
}

/** The options of an entry on `fleet` (the `table` revoker unless told otherwise). */
export function fleetOptions(fleet: Fleet, revoker?: Record<string, unknown>): Record<string, unknown> {
  return {
    certificates: { table: fleet.t("certificates"), serial: "serial", notAfter: "not_after", status: "status", reason: "revoke_reason" },
    credentials: {
      table: fleet.t("credentials"),
      certificates: ["robot_certificate_id", "ca_certificate_id"],
      status: "status",
      expiresAt: "expires_at",
    },
    revoker: revoker ?? { table: { table: fleet.t("revocations") } },
  };
}

/** A logger that keeps every line (as JSON text), to assert what was — and was not — logged. */
export function captureLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const write = (level: string) => (obj: object, msg?: string) => {
      lines.push(JSON.stringify({ level, ...bindings, ...obj, msg }));
    };
    return {
      debug: write("debug"),
      info: write("info"),
      warn: write("warn"),
      error: write("error"),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return Object.assign(make({}), { lines });
}
