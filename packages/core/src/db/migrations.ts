/**
 * purger's own tables (schema `purger`) and graphile-worker's (its own schema).
 * Idempotent: every command that connects runs them, under an advisory lock so
 * replicas starting together do not race.
 */
import type pg from "pg";
import { Logger as GraphileLogger, runMigrations } from "graphile-worker";
import { quoteIdent } from "./quote.js";

const MIGRATION_LOCK = "purger:migrate";

const SCHEMA_SQL = `
CREATE SCHEMA IF NOT EXISTS purger;

CREATE TABLE IF NOT EXISTS purger.runs (
  id bigserial PRIMARY KEY,
  entry text NOT NULL,
  plugin text NOT NULL,
  trigger text NOT NULL,
  status text NOT NULL,
  dry_run boolean NOT NULL DEFAULT false,
  cutoff timestamptz,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  processed bigint NOT NULL DEFAULT 0,
  batches integer NOT NULL DEFAULT 0,
  slices integer NOT NULL DEFAULT 0,
  total bigint,
  tables jsonb,
  checkpoint jsonb,
  process_id text,
  host text,
  pid integer,
  error text,
  guard text,
  duration_ms bigint
);
CREATE INDEX IF NOT EXISTS runs_entry_started_idx ON purger.runs (entry, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_running_idx ON purger.runs (entry) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS runs_started_idx ON purger.runs (started_at);

CREATE TABLE IF NOT EXISTS purger.bin_kinds (
  kind text PRIMARY KEY,
  entry text NOT NULL,
  handler text NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS purger.bin (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 10,
  last_error text,
  checkpoint jsonb,
  processed bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS bin_open_idx ON purger.bin (kind, created_at) WHERE status IN ('pending', 'failed');
CREATE INDEX IF NOT EXISTS bin_finished_idx ON purger.bin (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS purger.processes (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  concurrency integer NOT NULL,
  worker_ids text[] NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS purger.entries (
  id text PRIMARY KEY,
  paused boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- run: what decided a run (resumed only while it matches) and whether its guard passed.
ALTER TABLE purger.runs ADD COLUMN IF NOT EXISTS fingerprint jsonb;
ALTER TABLE purger.runs ADD COLUMN IF NOT EXISTS guard_passed_at timestamptz;
-- bin workers: the handler holding an item, items parked for a kind no live worker knows, what each process knows and its pid namespace
ALTER TABLE purger.bin ADD COLUMN IF NOT EXISTS claimed_by text;
ALTER TABLE purger.bin ADD COLUMN IF NOT EXISTS parked_at timestamptz;
CREATE INDEX IF NOT EXISTS bin_parked_idx ON purger.bin (kind) WHERE parked_at IS NOT NULL;
ALTER TABLE purger.processes ADD COLUMN IF NOT EXISTS kinds text[];
ALTER TABLE purger.processes ADD COLUMN IF NOT EXISTS pid_namespace text;
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

/** Install or update purger's schema and graphile-worker's, and register the config's bin kinds. */
export async function migrate(pool: pg.Pool, options: MigrateOptions): Promise<void> {
  await runMigrations({ pgPool: pool, schema: options.workerSchema, logger: quietGraphileLogger });
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [MIGRATION_LOCK]);
    await client.query(SCHEMA_SQL);
    await client.query(enqueueFunctionSql(options.workerSchema));
    for (const { kind, entry, handler } of options.kinds ?? []) {
      await client.query(
        `INSERT INTO purger.bin_kinds (kind, entry, handler) VALUES ($1, $2, $3)
         ON CONFLICT (kind) DO UPDATE SET entry = excluded.entry, handler = excluded.handler, registered_at = now()`,
        [kind, entry, handler],
      );
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** graphile-worker's default logger is chatty; migrations need none of it. */
const quietGraphileLogger = new GraphileLogger(() => () => {});
