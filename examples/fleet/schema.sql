-- The IoT fleet service's tables that purger works on (SPEC §1 scenarios 2
-- and 3). Each section belongs to the entries of purger.yaml named in its
-- title; add a section per new group of entries.

-- ── Teams (the web server deletes a team and bins its storage) ─────────────
CREATE TABLE teams (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  deleted_at timestamptz
);

CREATE TABLE robots (
  id bigserial PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES teams (id),
  name text NOT NULL
);

-- ── Presigned uploads (entry `blobs`: the stale-uploads sweep) ─────────────
-- A client asks for an upload URL: the web server inserts a row with
-- is_uploaded = false and the object's key, and sets is_uploaded once the
-- client says the upload finished. Rows still false after 24 h are stale.
CREATE TABLE uploads (
  id bigserial PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES teams (id),
  object_key text NOT NULL,
  is_uploaded boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- The sweep scans pending rows by age: a partial index keeps it small.
CREATE INDEX uploads_pending_created_at_idx ON uploads (created_at) WHERE NOT is_uploaded;
-- Before an object goes, purger checks that no other row (a completed upload) uses its key.
CREATE INDEX uploads_object_key_idx ON uploads (object_key);

-- ── Rows past a retention (entries `telemetry`, `robot-manifests`, `tuf-metadata`) ──
CREATE TABLE telemetry (
  id bigserial PRIMARY KEY,
  robot_id bigint NOT NULL,
  recorded_at timestamptz NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX telemetry_recorded_at_idx ON telemetry (recorded_at);

CREATE TABLE robot_manifests (
  id bigserial PRIMARY KEY,
  robot_id bigint NOT NULL,
  created_at timestamptz NOT NULL,
  manifest jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX robot_manifests_created_at_idx ON robot_manifests (created_at);
-- keepLatest per robot: each robot's newest manifest is found through this one.
CREATE INDEX robot_manifests_robot_created_idx ON robot_manifests (robot_id, created_at, id);

-- Signed TUF metadata: a row is useless once expired; kept 7 days for audits.
CREATE TABLE tuf_metadata (
  id bigserial PRIMARY KEY,
  role text NOT NULL,
  version integer NOT NULL,
  expires_at timestamptz NOT NULL,
  signed jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX tuf_metadata_expires_at_idx ON tuf_metadata (expires_at);

-- ── Certificates and provisioning credentials (entry `certs`) ──────────────
-- A robot's certificate is created when the robot is provisioned; its serial
-- is known only once the robot downloads it. Statuses: active → expired (past
-- not_after), or → revoking (revocation asked, serial unknown) → revoked.
CREATE TABLE robot_certificates (
  id bigserial PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES teams (id),
  robot_id bigint NOT NULL REFERENCES robots (id),
  serial text,
  not_after timestamptz,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expired', 'revoking', 'revoked')),
  revoke_reason text
);
-- The sweep finds expired certificates through this one.
CREATE INDEX robot_certificates_not_after_idx ON robot_certificates (not_after);
CREATE INDEX robot_certificates_team_id_idx ON robot_certificates (team_id);

-- A provisioning credential lets a robot enrol; it expires on its own
-- (expires_at) or with its certificate.
CREATE TABLE provisioning_credentials (
  id bigserial PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES teams (id),
  certificate_id bigint REFERENCES robot_certificates (id),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expired', 'revoked')),
  expires_at timestamptz
);
CREATE INDEX provisioning_credentials_certificate_id_idx ON provisioning_credentials (certificate_id);
CREATE INDEX provisioning_credentials_team_id_idx ON provisioning_credentials (team_id);

-- What the CA publishes as revoked. The primary key records each serial once
-- (the `table` revoker inserts with ON CONFLICT DO NOTHING).
CREATE TABLE certificate_revocations (
  serial text PRIMARY KEY,
  reason text NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
