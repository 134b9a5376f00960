/**
 * The schema of release 0.1.0, exactly as that release created it. Its
 * `IF NOT EXISTS` forms stay: a database 0.1.0 created has these tables but no
 * `purger.migrations`, and this migration adopts it (recorded as applied, nothing
 * lost) — see "upgrades a database created by release 0.1.0" in
 * test/migrations.test.ts. A released migration is never edited.
 */
export const sql = `
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
`;
