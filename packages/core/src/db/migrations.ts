/**
 * purger's own tables (schema `purger`), versioned like graphile-worker's:
 * numbered migrations in `migrations/`, each applied once, in order, in one
 * transaction with its row in `purger.migrations`, under an advisory lock so
 * replicas starting together do not race. Every command that connects runs
 * `migrate`. graphile-worker's schema is migrated by graphile-worker; the
 * enqueue function and the config's bin kinds are code, not schema, and are
 * re-created on every migrate. See "Schema and upgrades" in the README and
 * test/migrations.test.ts.
 */
import type pg from "pg";
import { Logger as GraphileLogger, runMigrations } from "graphile-worker";
import { PurgerError } from "../errors.js";
import { quoteIdent } from "./quote.js";
import { sql as initial } from "./migrations/0001-initial.js";
import { sql as runFingerprint } from "./migrations/0002-run-fingerprint.js";
import { sql as binClaims } from "./migrations/0003-bin-claims.js";

const MIGRATION_LOCK = "purger:migrate";

export interface Migration {
  /** 1, 2, 3 …: the order of application, the number of the file. */
  version: number;
  /** The file's name after the number (`0002-bin-priority.ts` → `bin-priority`). */
  name: string;
  /**
   * Processes of the previous release cannot work against the schema after
   * this migration (it renames or drops what they read or write), so every
   * one of them must be stopped before a process of this release starts.
   * The README's upgrade notes say so for each release that has one.
   * @defaultValue false
   */
  breaking?: boolean;
  sql: string;
}

/**
 * purger's schema history, oldest first.
 *
 * New schema changes: a new numbered file `migrations/NNNN-<name>.ts` exporting
 * its SQL, appended here. Never edit a migration once released: databases out
 * there already have it recorded and will not run it again.
 */
export const migrations: readonly Migration[] = [
  { version: 1, name: "initial", sql: initial },
  { version: 2, name: "run-fingerprint", sql: runFingerprint },
  { version: 3, name: "bin-claims", sql: binClaims },
];

/** The table of applied migrations: what migrate needs before it can read a version. */
const BOOTSTRAP_SQL = `
CREATE SCHEMA IF NOT EXISTS purger;
CREATE TABLE IF NOT EXISTS purger.migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
`;

/** Maximum size of a bin payload, in bytes of its JSON text. */
export const MAX_PAYLOAD_BYTES = 65_536;
/** Attempts of a bin item before it ends in the visible `failed` state. */
export const BIN_MAX_ATTEMPTS = 10;
export const BIN_TASK = "purger:bin";
/** graphile-worker priority of bin jobs (lower runs first): an entry's job never queues behind a bin flood. */
export const BIN_JOB_PRIORITY = 10;

function enqueueFunctionSql(workerSchema: string): string {
  const addJob = `${quoteIdent(workerSchema)}.add_job`;
  return `
CREATE OR REPLACE FUNCTION purger.enqueue(kind text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  item_id bigint;
  known text;
BEGIN
  IF kind IS NULL OR NOT EXISTS (SELECT 1 FROM purger.bin_kinds k WHERE k.kind = enqueue.kind) THEN
    SELECT string_agg(k.kind, ', ' ORDER BY k.kind) INTO known FROM purger.bin_kinds k;
    RAISE EXCEPTION 'purger.enqueue: unknown kind "%"', kind
      USING ERRCODE = '22023', HINT = 'known kinds: ' || coalesce(known, '(none: run any purger command once with your purger.yaml to register them)');
  END IF;
  IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
    RAISE EXCEPTION 'purger.enqueue(%): the payload must be a JSON object, found %', kind, coalesce(jsonb_typeof(payload), 'null')
      USING ERRCODE = '22023';
  END IF;
  IF octet_length(payload::text) > ${MAX_PAYLOAD_BYTES} THEN
    RAISE EXCEPTION 'purger.enqueue(%): the payload is % bytes, more than the limit of ${MAX_PAYLOAD_BYTES}', kind, octet_length(payload::text)
      USING ERRCODE = '54000';
  END IF;
  INSERT INTO purger.bin (kind, payload, max_attempts) VALUES (kind, payload, ${BIN_MAX_ATTEMPTS}) RETURNING id INTO item_id;
  PERFORM ${addJob}('${BIN_TASK}', json_build_object('item', item_id::text), max_attempts := ${BIN_MAX_ATTEMPTS}, priority := ${BIN_JOB_PRIORITY});
  RETURN item_id;
END
$fn$;
`;
}

export interface MigrateOptions {
  /** graphile-worker's schema. */
  workerSchema: string;
  /** Bin kinds of the loaded config to register (`<entry>.<handler>`). */
  kinds?: { kind: string; entry: string; handler: string }[];
}

export interface MigrateResult {
  /** The database's schema version before (0: none recorded — a new database, or one of release 0.1.0). */
  from: number;
  /** Its version now: the newest migration this code knows. */
  to: number;
  /** Versions applied by this call, in order; empty when another process had applied them or none were due. */
  applied: number[];
}

/**
 * Bring purger's schema and graphile-worker's up to date and register the
 * config's bin kinds. Refuses (a DATABASE error) a database whose schema is
 * newer than this code knows.
 */
export async function migrate(pool: pg.Pool, options: MigrateOptions): Promise<MigrateResult> {
  // Refuse a newer schema before changing anything, graphile-worker's schema included.
  refuseNewer(await readVersion(pool));
  await runMigrations({ pgPool: pool, schema: options.workerSchema, logger: quietGraphileLogger });
  const client = await pool.connect();
  try {
    // A session lock, not a transaction's: each migration commits on its own, so
    // an upgrade that fails half-way keeps (and records) the migrations before it.
    await client.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [MIGRATION_LOCK]);
    await client.query(BOOTSTRAP_SQL);
    // Read again under the lock: a replica may have migrated since the check above.
    const from = await readVersion(client);
    refuseNewer(from);
    const applied: number[] = [];
    for (const migration of migrations) {
      if (migration.version <= from) continue;
      await inTransaction(client, async () => {
        await client.query(migration.sql);
        await client.query("INSERT INTO purger.migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name]);
      }).catch((error: unknown) => {
        throw new PurgerError(
          "DATABASE",
          `purger's schema migration ${migration.version} ("${migration.name}") failed: ${(error as Error).message}`,
          {
            hint: "That migration was rolled back whole; the ones before it are applied and recorded in purger.migrations. Fix the cause and run any purger command again to resume the upgrade.",
            cause: error,
          },
        );
      });
      applied.push(migration.version);
    }
    await inTransaction(client, async () => {
      await client.query(enqueueFunctionSql(options.workerSchema));
      for (const { kind, entry, handler } of options.kinds ?? []) {
        await client.query(
          `INSERT INTO purger.bin_kinds (kind, entry, handler) VALUES ($1, $2, $3)
           ON CONFLICT (kind) DO UPDATE SET entry = excluded.entry, handler = excluded.handler, registered_at = now()`,
          [kind, entry, handler],
        );
      }
    });
    await client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [MIGRATION_LOCK]);
    client.release();
    return { from, to: latestVersion(), applied };
  } catch (error) {
    // Closing the session is what surely frees its lock, whatever state the connection is in.
    client.release(true);
    throw error;
  }
}

export interface SchemaVersion {
  /** The newest migration recorded in the database; 0 when none is. */
  version: number;
  /** The newest migration this code knows. */
  latest: number;
  /** `version === latest`: nothing to apply, nothing unknown. */
  upToDate: boolean;
}

/** The database's schema version against this code's, read-only (for a readiness check, `purger status`). */
export async function schemaVersion(pool: pg.Pool): Promise<SchemaVersion> {
  const version = await readVersion(pool);
  const latest = latestVersion();
  return { version, latest, upToDate: version === latest };
}

type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

async function readVersion(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ present: boolean }>("SELECT to_regclass('purger.migrations') IS NOT NULL AS present");
  if (!rows[0]?.present) return 0;
  const result = await db.query<{ version: number | null }>("SELECT max(version) AS version FROM purger.migrations");
  return result.rows[0]?.version ?? 0;
}

function refuseNewer(version: number): void {
  const known = migrations.at(-1);
  if (known === undefined || version <= known.version) return;
  throw new PurgerError(
    "DATABASE",
    `the database's purger schema is at version ${version}, newer than this purger knows (up to ${known.version}, "${known.name}"): a newer release of purger upgraded it`,
    {
      hint: "Run that release or a newer one against this database (upgrade purger where this command runs); an older purger could misread or damage data it does not know. Nothing was changed.",
    },
  );
}

function latestVersion(): number {
  return migrations.at(-1)?.version ?? 0;
}

async function inTransaction(client: pg.PoolClient, work: () => Promise<void>): Promise<void> {
  await client.query("BEGIN");
  try {
    await work();
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

/** graphile-worker's default logger is chatty; migrations need none of it. */
const quietGraphileLogger = new GraphileLogger(() => () => {});
