/**
 * The demo's tables and rows: an auth server (tokens, sessions with their
 * tokens, inactive sessions' IPs — the shapes of examples/retention/schema.sql,
 * reduced), and an IoT fleet (teams, robots, certificates with and without
 * serials, provisioning credentials, presigned uploads, telemetry, a package
 * worker's jobs). Rows sit on both sides of every window, so each entry has
 * work and leaves something standing.
 *
 * The demo database is created afresh on every run, so a second run starts
 * from the same data.
 */

export const DEMO_SCHEMA_SQL = `
CREATE SCHEMA auth;
CREATE SCHEMA fleet;

CREATE TABLE auth.users (
  user_id    bigint PRIMARY KEY,
  username   text NOT NULL,
  created_at timestamptz NOT NULL
);

-- Browser sessions: the IP of one inactive for 30 days is forgotten.
CREATE TABLE auth.user_sessions (
  user_session_id bigint PRIMARY KEY,
  user_id         bigint NOT NULL REFERENCES auth.users,
  created_at      timestamptz NOT NULL,
  last_active_at  timestamptz,
  last_active_ip  inet
);
CREATE INDEX ON auth.user_sessions (last_active_at);

CREATE TABLE auth.oauth2_sessions (
  oauth2_session_id bigint PRIMARY KEY,
  user_id           bigint NOT NULL REFERENCES auth.users,
  created_at        timestamptz NOT NULL,
  finished_at       timestamptz
);
CREATE INDEX ON auth.oauth2_sessions (finished_at);

CREATE TABLE auth.oauth2_access_tokens (
  oauth2_access_token_id bigint PRIMARY KEY,
  oauth2_session_id      bigint NOT NULL REFERENCES auth.oauth2_sessions,
  access_token           text NOT NULL,
  created_at             timestamptz NOT NULL,
  revoked_at             timestamptz
);
CREATE INDEX ON auth.oauth2_access_tokens (revoked_at);
CREATE INDEX ON auth.oauth2_access_tokens (oauth2_session_id);

CREATE TABLE auth.oauth2_refresh_tokens (
  oauth2_refresh_token_id bigint PRIMARY KEY,
  oauth2_session_id       bigint NOT NULL REFERENCES auth.oauth2_sessions,
  oauth2_access_token_id  bigint REFERENCES auth.oauth2_access_tokens ON DELETE SET NULL,
  refresh_token           text NOT NULL,
  created_at              timestamptz NOT NULL,
  revoked_at              timestamptz
);
CREATE INDEX ON auth.oauth2_refresh_tokens (revoked_at);
CREATE INDEX ON auth.oauth2_refresh_tokens (oauth2_session_id);
CREATE INDEX ON auth.oauth2_refresh_tokens (oauth2_access_token_id);

CREATE TABLE fleet.teams (
  team_id    bigint PRIMARY KEY,
  name       text NOT NULL,
  deleted_at timestamptz
);

CREATE TABLE fleet.robots (
  robot_id bigint PRIMARY KEY,
  team_id  bigint NOT NULL REFERENCES fleet.teams,
  name     text NOT NULL
);

-- A robot's certificate has a serial once the robot downloaded it.
CREATE TABLE fleet.certificates (
  certificate_id bigint PRIMARY KEY,
  robot_id       bigint REFERENCES fleet.robots,
  serial         text,
  not_after      timestamptz,
  status         text NOT NULL DEFAULT 'active',
  revoke_reason  text
);
CREATE INDEX ON fleet.certificates (not_after);
CREATE INDEX ON fleet.certificates (status);

CREATE TABLE fleet.credentials (
  credential_id        bigint PRIMARY KEY,
  robot_certificate_id bigint REFERENCES fleet.certificates,
  status               text NOT NULL DEFAULT 'active',
  expires_at           timestamptz
);
CREATE INDEX ON fleet.credentials (robot_certificate_id);

-- What the certs plugin's table revoker writes: one row per revoked serial.
CREATE TABLE fleet.revocations (
  serial     text PRIMARY KEY,
  reason     text NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);

-- A presigned-upload workflow: a row per upload, is_uploaded once the object arrived.
CREATE TABLE fleet.uploads (
  upload_id   bigint PRIMARY KEY,
  team_id     bigint NOT NULL,
  object_key  text NOT NULL,
  is_uploaded boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL
);
-- The sweep scans pending rows by age (as in examples/fleet): a partial index keeps it small.
CREATE INDEX ON fleet.uploads (created_at) WHERE NOT is_uploaded;

CREATE TABLE fleet.telemetry (
  telemetry_id bigint PRIMARY KEY,
  robot_id     bigint NOT NULL,
  recorded_at  timestamptz NOT NULL,
  battery      real,
  position     point
);
CREATE INDEX ON fleet.telemetry (recorded_at);

-- A package-processing worker: jobs stuck in 'processing' past a TTL go back to 'retry'.
CREATE TABLE fleet.package_jobs (
  job_id     bigint PRIMARY KEY,
  package    text NOT NULL,
  status     text NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX ON fleet.package_jobs (updated_at);
`;

/** Rows per table at scale 1 (the purge then takes about 30–60 s on two cores). */
export interface DemoSizes {
  users: number;
  oauth2Sessions: number;
  teams: number;
  robotsPerTeam: number;
  telemetry: number;
  packageJobs: number;
  uploads: number;
  /** Objects under the deleted team's prefix. */
  teamObjects: number;
  /** Objects under each other team's prefix. */
  otherTeamObjects: number;
}

export function demoSizes(scale: number): DemoSizes {
  const n = (base: number, min = 1) => Math.max(min, Math.round(base * scale));
  return {
    users: n(30_000, 10),
    oauth2Sessions: n(100_000, 10),
    teams: 8,
    robotsPerTeam: n(200, 4),
    telemetry: n(600_000, 100),
    packageJobs: n(30_000, 20),
    uploads: n(2_500, 10),
    teamObjects: n(8_000, 20),
    otherTeamObjects: n(150, 2),
  };
}

/** The team the demo deletes (its web server's "delete team" button). */
export const DELETED_TEAM = 3;

/** Seed statements, each with what it fills (shown while seeding). */
export function demoSeedSql(s: DemoSizes): Array<{ label: string; sql: string }> {
  const robots = s.teams * s.robotsPerTeam;
  return [
    {
      label: "auth: users and browser sessions",
      sql: `
INSERT INTO auth.users SELECT g, 'user' || g, now() - interval '400 days' FROM generate_series(1, ${s.users}) g;
-- Three browser sessions per user: active, idle 40 days (its IP is forgotten), idle 5 days.
INSERT INTO auth.user_sessions
  SELECT (u - 1) * 3 + k, u, now() - interval '200 days',
         now() - CASE k WHEN 1 THEN interval '1 hour' WHEN 2 THEN interval '40 days' ELSE interval '5 days' END,
         '192.0.2.1'::inet + (u % 250)
    FROM generate_series(1, ${s.users}) u, generate_series(1, 3) k;`,
    },
    {
      label: "auth: OAuth 2.0 sessions and their tokens",
      sql: `
-- Sessions: one in three finished 40 days ago (deleted with their tokens), one in six 3 days ago, the rest open.
INSERT INTO auth.oauth2_sessions
  SELECT g, 1 + g % ${s.users}, now() - interval '100 days',
         CASE WHEN g % 3 = 0 THEN now() - interval '40 days' WHEN g % 6 = 1 THEN now() - interval '3 days' END
    FROM generate_series(1, ${s.oauth2Sessions}) g;
-- Three access tokens per session; the second one of an open session was revoked 2 hours ago.
INSERT INTO auth.oauth2_access_tokens
  SELECT (g - 1) * 3 + k, g, 'mat_' || md5(g::text || '.' || k), now() - interval '50 days',
         CASE WHEN k = 2 AND g % 3 <> 0 THEN now() - interval '2 hours' END
    FROM generate_series(1, ${s.oauth2Sessions}) g, generate_series(1, 3) k;
-- Two refresh tokens per session; the first of every other session was revoked 2 hours ago.
INSERT INTO auth.oauth2_refresh_tokens
  SELECT (g - 1) * 2 + k, g, (g - 1) * 3 + 3, 'mar_' || md5(g::text || ':' || k), now() - interval '50 days',
         CASE WHEN k = 1 AND g % 2 = 0 THEN now() - interval '2 hours' END
    FROM generate_series(1, ${s.oauth2Sessions}) g, generate_series(1, 2) k;`,
    },
    {
      label: "fleet: teams, robots, certificates, credentials",
      sql: `
INSERT INTO fleet.teams SELECT g, 'team-' || g, NULL FROM generate_series(1, ${s.teams}) g;
INSERT INTO fleet.robots SELECT g, 1 + (g - 1) / ${s.robotsPerTeam}, 'robot-' || g FROM generate_series(1, ${robots}) g;
-- One certificate per robot: a third not downloaded yet (no serial); one in ten of the other teams' past notAfter.
INSERT INTO fleet.certificates (certificate_id, robot_id, serial, not_after, status)
  SELECT g, g, CASE WHEN g % 3 <> 0 THEN upper(md5('serial' || g)) END,
         now() + CASE WHEN g % 10 = 5 AND 1 + (g - 1) / ${s.robotsPerTeam} <> ${DELETED_TEAM} THEN interval '-2 days' ELSE interval '300 days' END,
         'active'
    FROM generate_series(1, ${robots}) g;
-- One provisioning credential per robot; one in eight of the other teams' expired yesterday.
INSERT INTO fleet.credentials
  SELECT g, g, 'active',
         CASE WHEN g % 8 = 3 AND 1 + (g - 1) / ${s.robotsPerTeam} <> ${DELETED_TEAM} THEN now() - interval '1 day' ELSE now() + interval '90 days' END
    FROM generate_series(1, ${robots}) g;`,
    },
    {
      label: "fleet: uploads, telemetry, package jobs",
      sql: `
-- Uploads: pending for 2 days (stale: row and object go), pending for 1 hour, completed.
INSERT INTO fleet.uploads
  SELECT g, 1 + g % ${s.teams}, 'uploads/' || (1 + g % ${s.teams}) || '/' || g || '.tar.gz', g % 5 = 4,
         now() - CASE WHEN g % 5 IN (0, 1, 2) THEN interval '2 days' ELSE interval '1 hour' END
    FROM generate_series(1, ${s.uploads}) g;
-- Telemetry: 30 days of readings; 7 are kept.
INSERT INTO fleet.telemetry
  SELECT g, 1 + g % ${robots}, now() - (g % 30) * interval '1 day' - interval '1 minute', random(), point(random(), random())
    FROM generate_series(1, ${s.telemetry}) g;
-- Package jobs: one in four stuck in 'processing' for an hour.
INSERT INTO fleet.package_jobs
  SELECT g, 'pkg-' || g, CASE g % 4 WHEN 0 THEN 'processing' WHEN 1 THEN 'done' ELSE 'queued' END,
         now() - CASE g % 4 WHEN 0 THEN interval '1 hour' ELSE interval '1 minute' END
    FROM generate_series(1, ${s.packageJobs}) g;
ANALYZE;`,
    },
  ];
}
