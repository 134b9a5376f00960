/**
 * The demo's purger.yaml: written to `.purger/demo/purger.yaml` on every run
 * and loaded through the config loader, so it is validated exactly like a
 * user's file (and can be read as an example of every first-party plugin).
 *
 * Each plugin contributes its entries through a `DemoPart`: a plugin that is
 * not in the tree (or not finished) simply has no part.
 */

export interface DemoConfigInput {
  /** The in-process S3 server. */
  s3Endpoint: string;
  bucket: string;
}

/** The environment variable the generated file reads the demo database's URL from (no secret in the file). */
export const DEMO_DATABASE_URL_VAR = "PURGER_DEMO_DATABASE_URL";

/** Every entry runs at start, then every few seconds, so new work (a serial that appears) is picked up. */
const EVERY = `    schedule: every 5s
    runOnStart: true`;

export interface DemoPart {
  /** A title for the comment above the entries. */
  title: string;
  /** The package of the plugin (to check that it is installed). */
  plugin: string;
  yaml(input: DemoConfigInput): string;
}

export const DEMO_PARTS: DemoPart[] = [
  {
    title: "An auth server's cleanup jobs (examples/retention): tokens, finished sessions with their tokens, inactive sessions' IPs",
    plugin: "@purger/plugin-retention",
    yaml: () => `
  - id: revoked-access-tokens
    use: "@purger/plugin-retention"
${EVERY}
    retention: 1h
    options:
      table: auth.oauth2_access_tokens
      column: revoked_at

  - id: revoked-refresh-tokens
    use: "@purger/plugin-retention"
${EVERY}
    retention: 1h
    options:
      table: auth.oauth2_refresh_tokens
      column: revoked_at

  - id: finished-oauth2-sessions
    use: "@purger/plugin-retention"
${EVERY}
    retention: 30d
    options:
      table: auth.oauth2_sessions
      column: finished_at
      cascade:
        - { table: auth.oauth2_refresh_tokens, column: oauth2_session_id }
        - { table: auth.oauth2_access_tokens, column: oauth2_session_id }

  - id: inactive-session-ips
    use: "@purger/plugin-retention"
${EVERY}
    retention: 30d
    options:
      table: auth.user_sessions
      column: last_active_at
      action: update
      set: { last_active_ip: null }
`,
  },
  {
    title: "The IoT fleet: telemetry past its retention, and package jobs stuck in processing (an update, not a delete)",
    plugin: "@purger/plugin-retention",
    yaml: () => `
  - id: telemetry
    use: "@purger/plugin-retention"
${EVERY}
    retention: 7d
    batchSize: 5000
    options:
      table: fleet.telemetry
      column: recorded_at

  - id: stuck-package-jobs
    use: "@purger/plugin-retention"
${EVERY}
    retention: 15m
    options:
      table: fleet.package_jobs
      column: updated_at
      where: { status: processing }
      action: update
      set: { status: retry }
`,
  },
  {
    title: "The fleet's bucket: a deleted team's prefix (from the bin), and stale presigned uploads (row + object)",
    plugin: "@purger/plugin-blob",
    yaml: ({ s3Endpoint, bucket }) => `
  - id: team-objects
    use: "@purger/plugin-blob"
    options:
      bucket: ${JSON.stringify(bucket)}
      endpoint: ${JSON.stringify(s3Endpoint)}
      forcePathStyle: true

  - id: stale-uploads
    use: "@purger/plugin-blob"
${EVERY}
    retention: 24h
    batchSize: 100
    options:
      bucket: ${JSON.stringify(bucket)}
      endpoint: ${JSON.stringify(s3Endpoint)}
      forcePathStyle: true
      uploads:
        table: fleet.uploads
        column: created_at
        flag: is_uploaded
        objectKey: object_key
`,
  },
  {
    title: "Robot certificates: expiry, credentials, revocation now or once the serial is known (from the bin and the sweep)",
    plugin: "@purger/plugin-certs",
    yaml: () => `
  - id: robot-certs
    use: "@purger/plugin-certs"
${EVERY}
    options:
      certificates:
        table: fleet.certificates
        serial: serial
        notAfter: not_after
        status: status
        reason: revoke_reason
      credentials:
        table: fleet.credentials
        certificates: [robot_certificate_id]
        status: status
        expiresAt: expires_at
      revoker:
        table:
          table: fleet.revocations
`,
  },
];

export function demoConfigYaml(input: DemoConfigInput, parts: DemoPart[]): string {
  const entries = parts.map((part) => `  # ── ${part.title}\n${part.yaml(input).replace(/^\n/, "")}`).join("\n");
  return `# Written by \`purger demo\` on every run (edits are lost): the demo's entries,
# one or more per first-party plugin. Copy it to start a purger.yaml of your own.
database:
  url: \${${DEMO_DATABASE_URL_VAR}}
worker:
  concurrency: 6
runs:
  keep: 1d
defaults:
  batchSize: 1000
  jitter: 0%

plugins:
${entries}`;
}
