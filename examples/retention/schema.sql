-- Tables shaped like the Matrix Authentication Service's, reduced to the
-- columns its cleanup jobs read, with the same kinds of keys (ULIDs stored
-- as uuid), foreign keys and indexes. `purger.yaml` beside this file cleans
-- them up; `seed.sql` fills them with rows on both sides of every window.
--
--   psql "$DATABASE_URL" -f schema.sql -f seed.sql

CREATE TYPE queue_job_status AS ENUM ('available', 'running', 'completed', 'failed', 'scheduled');

CREATE TABLE users (
  user_id        uuid PRIMARY KEY,
  username       text NOT NULL UNIQUE,
  created_at     timestamptz NOT NULL,
  deactivated_at timestamptz
);

-- Browser sessions.
CREATE TABLE user_sessions (
  user_session_id uuid PRIMARY KEY,
  user_id         uuid NOT NULL REFERENCES users,
  created_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  last_active_at  timestamptz,
  last_active_ip  inet
);
CREATE INDEX user_sessions_finished_at ON user_sessions (finished_at);
CREATE INDEX user_sessions_last_active_at ON user_sessions (last_active_at);

CREATE TABLE user_session_authentications (
  user_session_authentication_id uuid PRIMARY KEY,
  user_session_id                uuid NOT NULL REFERENCES user_sessions,
  created_at                     timestamptz NOT NULL
);
CREATE INDEX user_session_authentications_session ON user_session_authentications (user_session_id);

CREATE TABLE oauth2_clients (
  oauth2_client_id uuid PRIMARY KEY,
  is_static        boolean NOT NULL DEFAULT false
);

CREATE TABLE oauth2_sessions (
  oauth2_session_id uuid PRIMARY KEY,
  oauth2_client_id  uuid NOT NULL REFERENCES oauth2_clients,
  user_id           uuid REFERENCES users,
  user_session_id   uuid REFERENCES user_sessions,
  created_at        timestamptz NOT NULL,
  finished_at       timestamptz,
  last_active_at    timestamptz,
  last_active_ip    inet
);
CREATE INDEX oauth2_sessions_finished_at ON oauth2_sessions (finished_at);
CREATE INDEX oauth2_sessions_last_active_at ON oauth2_sessions (last_active_at);
CREATE INDEX oauth2_sessions_user_session ON oauth2_sessions (user_session_id);
CREATE INDEX oauth2_sessions_client ON oauth2_sessions (oauth2_client_id);

CREATE TABLE oauth2_access_tokens (
  oauth2_access_token_id uuid PRIMARY KEY,
  oauth2_session_id      uuid NOT NULL REFERENCES oauth2_sessions,
  access_token           text NOT NULL UNIQUE,
  created_at             timestamptz NOT NULL,
  expires_at             timestamptz,
  revoked_at             timestamptz
);
CREATE INDEX oauth2_access_tokens_revoked_at ON oauth2_access_tokens (revoked_at);
CREATE INDEX oauth2_access_tokens_expires_at ON oauth2_access_tokens (expires_at);
CREATE INDEX oauth2_access_tokens_session ON oauth2_access_tokens (oauth2_session_id);

CREATE TABLE oauth2_refresh_tokens (
  oauth2_refresh_token_id      uuid PRIMARY KEY,
  oauth2_session_id            uuid NOT NULL REFERENCES oauth2_sessions,
  oauth2_access_token_id       uuid REFERENCES oauth2_access_tokens ON DELETE SET NULL,
  refresh_token                text NOT NULL UNIQUE,
  created_at                   timestamptz NOT NULL,
  consumed_at                  timestamptz,
  revoked_at                   timestamptz,
  next_oauth2_refresh_token_id uuid REFERENCES oauth2_refresh_tokens ON DELETE SET NULL
);
CREATE INDEX oauth2_refresh_tokens_revoked_at ON oauth2_refresh_tokens (revoked_at);
CREATE INDEX oauth2_refresh_tokens_consumed_at ON oauth2_refresh_tokens (consumed_at, next_oauth2_refresh_token_id, oauth2_refresh_token_id);
CREATE INDEX oauth2_refresh_tokens_session ON oauth2_refresh_tokens (oauth2_session_id);
CREATE INDEX oauth2_refresh_tokens_access_token ON oauth2_refresh_tokens (oauth2_access_token_id);
CREATE INDEX oauth2_refresh_tokens_next ON oauth2_refresh_tokens (next_oauth2_refresh_token_id);

-- Sessions of clients using the legacy Matrix login API.
CREATE TABLE compat_sessions (
  compat_session_id uuid PRIMARY KEY,
  user_id           uuid NOT NULL REFERENCES users,
  user_session_id   uuid REFERENCES user_sessions,
  device_id         text,
  created_at        timestamptz NOT NULL,
  finished_at       timestamptz,
  last_active_at    timestamptz,
  last_active_ip    inet
);
CREATE INDEX compat_sessions_finished_at ON compat_sessions (finished_at);
CREATE INDEX compat_sessions_last_active_at ON compat_sessions (last_active_at);
CREATE INDEX compat_sessions_user_session ON compat_sessions (user_session_id);

CREATE TABLE compat_access_tokens (
  compat_access_token_id uuid PRIMARY KEY,
  compat_session_id      uuid NOT NULL REFERENCES compat_sessions,
  access_token           text NOT NULL UNIQUE,
  created_at             timestamptz NOT NULL,
  expires_at             timestamptz
);
CREATE INDEX compat_access_tokens_session ON compat_access_tokens (compat_session_id);

CREATE TABLE compat_refresh_tokens (
  compat_refresh_token_id uuid PRIMARY KEY,
  compat_session_id       uuid NOT NULL REFERENCES compat_sessions,
  compat_access_token_id  uuid NOT NULL REFERENCES compat_access_tokens,
  refresh_token           text NOT NULL UNIQUE,
  created_at              timestamptz NOT NULL,
  consumed_at             timestamptz
);
CREATE INDEX compat_refresh_tokens_session ON compat_refresh_tokens (compat_session_id);
CREATE INDEX compat_refresh_tokens_access_token ON compat_refresh_tokens (compat_access_token_id);

CREATE TABLE compat_sso_logins (
  compat_sso_login_id uuid PRIMARY KEY,
  compat_session_id   uuid REFERENCES compat_sessions,
  login_token         text NOT NULL UNIQUE,
  created_at          timestamptz NOT NULL
);
CREATE INDEX compat_sso_logins_session ON compat_sso_logins (compat_session_id);

-- Grants, authentications, registrations: ULID keys, so the key is the clock.
CREATE TABLE oauth2_authorization_grants (
  oauth2_authorization_grant_id uuid PRIMARY KEY,
  oauth2_client_id              uuid NOT NULL REFERENCES oauth2_clients,
  oauth2_session_id             uuid REFERENCES oauth2_sessions ON DELETE SET NULL,
  created_at                    timestamptz NOT NULL
);
CREATE INDEX oauth2_authorization_grants_session ON oauth2_authorization_grants (oauth2_session_id);

CREATE TABLE oauth2_device_code_grant (
  oauth2_device_code_grant_id uuid PRIMARY KEY,
  oauth2_client_id            uuid NOT NULL REFERENCES oauth2_clients,
  oauth2_session_id           uuid REFERENCES oauth2_sessions ON DELETE SET NULL,
  created_at                  timestamptz NOT NULL
);
CREATE INDEX oauth2_device_code_grant_session ON oauth2_device_code_grant (oauth2_session_id);

CREATE TABLE user_email_authentications (
  user_email_authentication_id uuid PRIMARY KEY,
  user_session_id              uuid REFERENCES user_sessions ON DELETE SET NULL,
  email                        text NOT NULL,
  created_at                   timestamptz NOT NULL,
  completed_at                 timestamptz
);
CREATE INDEX user_email_authentications_session ON user_email_authentications (user_session_id);

CREATE TABLE user_email_authentication_codes (
  user_email_authentication_code_id uuid PRIMARY KEY,
  user_email_authentication_id      uuid NOT NULL REFERENCES user_email_authentications,
  code                              text NOT NULL,
  created_at                        timestamptz NOT NULL,
  expires_at                        timestamptz NOT NULL
);
CREATE INDEX user_email_authentication_codes_authentication ON user_email_authentication_codes (user_email_authentication_id);

CREATE TABLE user_registrations (
  user_registration_id    uuid PRIMARY KEY,
  username                text NOT NULL,
  email_authentication_id uuid REFERENCES user_email_authentications ON DELETE SET NULL,
  created_at              timestamptz NOT NULL,
  completed_at            timestamptz
);
CREATE INDEX user_registrations_email_authentication ON user_registrations (email_authentication_id);

CREATE TABLE user_recovery_sessions (
  user_recovery_session_id uuid PRIMARY KEY,
  email                    text NOT NULL,
  created_at               timestamptz NOT NULL,
  consumed_at              timestamptz
);

CREATE TABLE user_recovery_tickets (
  user_recovery_ticket_id  uuid PRIMARY KEY,
  user_recovery_session_id uuid NOT NULL REFERENCES user_recovery_sessions,
  ticket                   text NOT NULL UNIQUE,
  created_at               timestamptz NOT NULL,
  expires_at               timestamptz NOT NULL
);
CREATE INDEX user_recovery_tickets_session ON user_recovery_tickets (user_recovery_session_id);

-- Upstream identity providers: a link without a user is orphaned.
CREATE TABLE upstream_oauth_links (
  upstream_oauth_link_id uuid PRIMARY KEY,
  user_id                uuid REFERENCES users ON DELETE SET NULL,
  subject                text NOT NULL,
  created_at             timestamptz NOT NULL
);

CREATE TABLE upstream_oauth_authorization_sessions (
  upstream_oauth_authorization_session_id uuid PRIMARY KEY,
  upstream_oauth_link_id                  uuid REFERENCES upstream_oauth_links,
  user_session_id                         uuid REFERENCES user_sessions ON DELETE SET NULL,
  created_at                              timestamptz NOT NULL,
  completed_at                            timestamptz
);
CREATE INDEX upstream_oauth_authorization_sessions_link ON upstream_oauth_authorization_sessions (upstream_oauth_link_id);
CREATE INDEX upstream_oauth_authorization_sessions_user_session ON upstream_oauth_authorization_sessions (user_session_id);

-- The job queue and the policy engine's data.
CREATE TABLE queue_jobs (
  queue_job_id    uuid PRIMARY KEY,
  queue_name      text NOT NULL,
  status          queue_job_status NOT NULL DEFAULT 'available',
  created_at      timestamptz NOT NULL,
  next_attempt_id uuid REFERENCES queue_jobs ON DELETE SET NULL
);
CREATE INDEX queue_jobs_next_attempt ON queue_jobs (next_attempt_id);

CREATE TABLE policy_data (
  policy_data_id uuid PRIMARY KEY,
  created_at     timestamptz NOT NULL,
  data           jsonb NOT NULL
);
