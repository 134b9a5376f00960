-- Rows on both sides of every window of purger.yaml, relative to now(), for
-- the tables of schema.sql. 100 users and what hangs off them; run
-- `SET seed.scale = 10;` in the same session first for ten times as many.
-- Ids are ULIDs stored as uuid: 48 bits of milliseconds, then 80 random bits.

CREATE FUNCTION pg_temp.ulid_at(at timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0')
          || substr(md5(random()::text || clock_timestamp()::text), 1, 20))::uuid
$$;
CREATE FUNCTION pg_temp.seed_scale() RETURNS int LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('seed.scale', true), ''), '1')::int
$$;

CREATE TEMP TABLE seed_users AS
  SELECT g AS n, pg_temp.ulid_at(now() - interval '400 days') AS user_id
    FROM generate_series(1, 100 * pg_temp.seed_scale()) g;
INSERT INTO users SELECT user_id, 'user' || n, now() - interval '400 days', NULL FROM seed_users;

-- Browser sessions: active; idle 40 days (IP cleared); idle 100 days (finished now, IP cleared);
-- finished 40 days ago and still referenced by an OAuth 2.0 and a compat session (deleted once those are);
-- finished 40 days ago (deleted with its authentication); finished 5 days ago (kept).
CREATE TEMP TABLE seed_user_sessions AS
  SELECT u.n, k.kind, u.user_id, pg_temp.ulid_at(now() - interval '200 days') AS id
    FROM seed_users u, unnest(ARRAY['active', 'idle40', 'idle100', 'finished40_ref', 'finished40', 'finished5']) AS k(kind);
INSERT INTO user_sessions
  SELECT id, user_id, now() - interval '200 days',
         CASE kind WHEN 'finished5' THEN now() - interval '5 days' WHEN 'finished40' THEN now() - interval '40 days'
                   WHEN 'finished40_ref' THEN now() - interval '40 days' END,
         CASE kind WHEN 'active' THEN now() - interval '1 hour' WHEN 'idle100' THEN now() - interval '100 days'
                   WHEN 'finished5' THEN now() - interval '6 days' ELSE now() - interval '40 days' END,
         '192.0.2.1'::inet + n % 250
    FROM seed_user_sessions;
INSERT INTO user_session_authentications
  SELECT pg_temp.ulid_at(now() - interval '200 days'), id, now() - interval '200 days' FROM seed_user_sessions;

INSERT INTO oauth2_clients VALUES ('00000000-0000-0000-0000-000000000001', true), ('00000000-0000-0000-0000-000000000002', false);

-- OAuth 2.0 sessions: finished 40 days ago (deleted with their tokens); finished 3 days ago; idle 100 days
-- on a dynamic client (finished now) and on a static client (kept open); active.
CREATE TEMP TABLE seed_oauth2_sessions AS
  SELECT u.n, k.kind, u.user_id, pg_temp.ulid_at(now() - interval '100 days') AS id
    FROM seed_users u, unnest(ARRAY['finished40', 'finished3', 'idle100_dynamic', 'idle100_static', 'active']) AS k(kind);
INSERT INTO oauth2_sessions
  SELECT s.id,
         CASE s.kind WHEN 'idle100_static' THEN '00000000-0000-0000-0000-000000000001'::uuid ELSE '00000000-0000-0000-0000-000000000002'::uuid END,
         s.user_id,
         CASE s.kind WHEN 'finished40' THEN us.id END,
         now() - interval '100 days',
         CASE s.kind WHEN 'finished40' THEN now() - interval '40 days' WHEN 'finished3' THEN now() - interval '3 days' END,
         CASE s.kind WHEN 'active' THEN now() - interval '10 minutes' WHEN 'finished3' THEN now() - interval '3 days' ELSE now() - interval '100 days' END,
         '198.51.100.1'::inet + s.n % 250
    FROM seed_oauth2_sessions s
    LEFT JOIN seed_user_sessions us ON us.n = s.n AND us.kind = 'finished40_ref';

-- Access tokens: revoked 2 hours ago; expired 40 days ago; valid.
CREATE TEMP TABLE seed_access_tokens AS
  SELECT s.id AS session_id, k.kind, pg_temp.ulid_at(now() - interval '50 days') AS id
    FROM seed_oauth2_sessions s, unnest(ARRAY['revoked', 'expired', 'valid']) AS k(kind);
INSERT INTO oauth2_access_tokens
  SELECT id, session_id, 'mat_' || replace(id::text, '-', ''), now() - interval '50 days',
         CASE kind WHEN 'expired' THEN now() - interval '40 days' ELSE now() + interval '1 hour' END,
         CASE kind WHEN 'revoked' THEN now() - interval '2 hours' END
    FROM seed_access_tokens;

-- Refresh tokens: a chain r1 → r2 → r3 (r1 and r2 consumed, r3 in use: r1 goes, r2 stays while r3 is
-- unconsumed), a chain r4 → r5 both consumed (both go), and r6 revoked 2 hours ago.
CREATE TEMP TABLE seed_refresh_tokens AS
  SELECT s.id AS session_id, k.kind, pg_temp.ulid_at(now() - interval '50 days') AS id
    FROM seed_oauth2_sessions s, unnest(ARRAY['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) AS k(kind);
INSERT INTO oauth2_refresh_tokens
  SELECT r.id, r.session_id, a.id, 'mar_' || replace(r.id::text, '-', ''), now() - interval '50 days',
         CASE r.kind WHEN 'r1' THEN now() - interval '3 hours' WHEN 'r2' THEN now() - interval '2 hours'
                     WHEN 'r4' THEN now() - interval '3 hours' WHEN 'r5' THEN now() - interval '2 hours' END,
         CASE r.kind WHEN 'r6' THEN now() - interval '2 hours' END,
         NULL
    FROM seed_refresh_tokens r
    JOIN seed_access_tokens a ON a.session_id = r.session_id AND a.kind = 'valid';
UPDATE oauth2_refresh_tokens t SET next_oauth2_refresh_token_id = n.id
  FROM seed_refresh_tokens r, seed_refresh_tokens n
 WHERE t.oauth2_refresh_token_id = r.id AND n.session_id = r.session_id
   AND (r.kind, n.kind) IN (('r1', 'r2'), ('r2', 'r3'), ('r4', 'r5'));

-- Compat sessions: finished 40 days ago (deleted with tokens and SSO login); finished 3 days ago;
-- idle 100 days (finished now); active. Each with an access token, a refresh token and an SSO login.
CREATE TEMP TABLE seed_compat_sessions AS
  SELECT u.n, k.kind, u.user_id, pg_temp.ulid_at(now() - interval '100 days') AS id
    FROM seed_users u, unnest(ARRAY['finished40', 'finished3', 'idle100', 'active']) AS k(kind);
INSERT INTO compat_sessions
  SELECT s.id, s.user_id, CASE s.kind WHEN 'finished40' THEN us.id END, 'DEVICE' || s.n || s.kind, now() - interval '100 days',
         CASE s.kind WHEN 'finished40' THEN now() - interval '40 days' WHEN 'finished3' THEN now() - interval '3 days' END,
         CASE s.kind WHEN 'active' THEN now() - interval '1 minute' WHEN 'finished3' THEN now() - interval '3 days' ELSE now() - interval '100 days' END,
         '203.0.113.1'::inet + s.n % 250
    FROM seed_compat_sessions s
    LEFT JOIN seed_user_sessions us ON us.n = s.n AND us.kind = 'finished40_ref';
INSERT INTO compat_access_tokens
  SELECT pg_temp.ulid_at(now() - interval '100 days'), id, 'mct_' || replace(id::text, '-', ''), now() - interval '100 days', NULL FROM seed_compat_sessions;
INSERT INTO compat_refresh_tokens
  SELECT pg_temp.ulid_at(now() - interval '100 days'), a.compat_session_id, a.compat_access_token_id, 'mcr_' || replace(a.compat_session_id::text, '-', ''),
         now() - interval '100 days', NULL
    FROM compat_access_tokens a;
INSERT INTO compat_sso_logins
  SELECT pg_temp.ulid_at(now() - interval '100 days'), id, 'sso_' || replace(id::text, '-', ''), now() - interval '100 days' FROM seed_compat_sessions;

-- ULID-keyed rows, one past and one within each window.
INSERT INTO oauth2_authorization_grants
  SELECT pg_temp.ulid_at(now() - d * interval '1 day'), '00000000-0000-0000-0000-000000000002', NULL, now() - d * interval '1 day'
    FROM seed_users, unnest(ARRAY[10, 1]) AS d;
INSERT INTO oauth2_device_code_grant
  SELECT pg_temp.ulid_at(now() - d * interval '1 day'), '00000000-0000-0000-0000-000000000002', NULL, now() - d * interval '1 day'
    FROM seed_users, unnest(ARRAY[10, 1]) AS d;
CREATE TEMP TABLE seed_email_authentications AS
  SELECT n, d, pg_temp.ulid_at(now() - d * interval '1 day') AS id FROM seed_users, unnest(ARRAY[10, 1]) AS d;
INSERT INTO user_email_authentications SELECT id, NULL, 'user' || n || '@example.com', now() - d * interval '1 day', NULL FROM seed_email_authentications;
INSERT INTO user_email_authentication_codes
  SELECT pg_temp.ulid_at(now() - d * interval '1 day'), id, lpad((n * 7919 % 1000000)::text, 6, '0'), now() - d * interval '1 day',
         now() - d * interval '1 day' + interval '10 minutes'
    FROM seed_email_authentications;
INSERT INTO user_registrations
  SELECT pg_temp.ulid_at(now() - d * interval '1 day'), 'newuser' || n || '_' || d, NULL, now() - d * interval '1 day', NULL
    FROM seed_users, unnest(ARRAY[40, 1]) AS d;
CREATE TEMP TABLE seed_recovery_sessions AS
  SELECT n, d, pg_temp.ulid_at(now() - d * interval '1 day') AS id FROM seed_users, unnest(ARRAY[10, 1]) AS d;
INSERT INTO user_recovery_sessions SELECT id, 'user' || n || '@example.com', now() - d * interval '1 day', NULL FROM seed_recovery_sessions;
INSERT INTO user_recovery_tickets
  SELECT pg_temp.ulid_at(now() - d * interval '1 day'), id, 'ticket_' || replace(id::text, '-', ''), now() - d * interval '1 day',
         now() - d * interval '1 day' + interval '10 minutes'
    FROM seed_recovery_sessions;

-- Upstream links: linked to a user (kept), orphaned 10 days ago (deleted with its session), orphaned 1 day ago.
CREATE TEMP TABLE seed_links AS
  SELECT u.n, u.user_id, k.kind, pg_temp.ulid_at(now() - CASE k.kind WHEN 'orphan10' THEN interval '10 days' WHEN 'orphan1' THEN interval '1 day' ELSE interval '100 days' END) AS id
    FROM seed_users u, unnest(ARRAY['linked', 'orphan10', 'orphan1']) AS k(kind);
INSERT INTO upstream_oauth_links
  SELECT id, CASE kind WHEN 'linked' THEN user_id END, 'subject-' || n || '-' || kind,
         now() - CASE kind WHEN 'orphan10' THEN interval '10 days' WHEN 'orphan1' THEN interval '1 day' ELSE interval '100 days' END
    FROM seed_links;
-- Authorization sessions: one completed per linked link, one per orphaned link, and pending ones 10 and 1 days old.
INSERT INTO upstream_oauth_authorization_sessions
  SELECT pg_temp.ulid_at(now() - interval '100 days'), l.id, us.id, now() - interval '100 days', now() - interval '100 days'
    FROM seed_links l JOIN seed_user_sessions us ON us.n = l.n AND us.kind = 'active' WHERE l.kind = 'linked';
INSERT INTO upstream_oauth_authorization_sessions
  SELECT pg_temp.ulid_at(now() - interval '10 days'), id, NULL, now() - interval '10 days', NULL FROM seed_links WHERE kind = 'orphan10';
INSERT INTO upstream_oauth_authorization_sessions
  SELECT pg_temp.ulid_at(now() - d * interval '1 day'), NULL, NULL, now() - d * interval '1 day', NULL
    FROM seed_users, unnest(ARRAY[10, 1]) AS d;

-- Queue jobs: every status, 40 days old and 1 day old.
INSERT INTO queue_jobs
  SELECT pg_temp.ulid_at(now() - d * interval '1 day'), 'default', s, now() - d * interval '1 day', NULL
    FROM seed_users, unnest(ARRAY[40, 1]) AS d, unnest(enum_range(NULL::queue_job_status)) AS s;

-- Policy data: 25 versions, one a day.
INSERT INTO policy_data
  SELECT pg_temp.ulid_at(now() - g * interval '1 day'), now() - g * interval '1 day', jsonb_build_object('version', 26 - g)
    FROM generate_series(1, 25) g;

ANALYZE;
