/**
 * `purger demo`, start to end, with nothing installed: an in-process S3
 * server, the embedded PostgreSQL under `.purger/demo`, a fresh database
 * seeded for every scenario of examples/, a team deletion put in the bin the
 * way a web server does it, then a real worker (`startWorker`, as `purger
 * run`) working every entry until every backlog and the bin are empty.
 *
 * The UI (or the absence of one) is the caller's: it follows along through
 * the events and the hooks.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  binDepth,
  estimateEntry,
  loadConfig,
  PurgerError,
  quoteIdent,
  redactUrl,
  startEmbeddedPostgres,
  startWorker,
  type EntryConfig,
  type Logger,
  type PurgerConfig,
  type PurgerEventEmitter,
} from "@purger/core/host";
import { cliPackageDir } from "../context.js";
import { connectDatabase, type Database } from "../database.js";
import { DEMO_DATABASE_URL_VAR, DEMO_PARTS, demoConfigYaml, type DemoPart } from "./config.js";
import { DEMO_BUCKET, demoS3Client, seedBucket } from "./objects.js";
import { DEMO_SCHEMA_SQL, demoSeedSql, demoSizes } from "./schema.js";
import { DemoStats, type DemoEntryResult } from "./stats.js";
import { deleteTeam, downloadPendingCertificates } from "./team-deletion.js";

export interface DemoOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Data size multiplier. @defaultValue 1 */
  scale?: number;
  log: Logger;
  events: PurgerEventEmitter;
  /** Aborts the demo (the user quit): the worker drains, the summary says what was done. */
  signal: AbortSignal;
  /** Give up after this long. @defaultValue 10 minutes */
  timeoutMs?: number;
}

export interface DemoHooks {
  /** The config is loaded (the UI can show its entries). */
  onConfig?(config: PurgerConfig, file: string): Promise<void> | void;
  /** What the demo is doing before the worker starts ("seeding …"), null when done. */
  onStage?(text: string | null): void;
  onDatabase?(database: { url: string; label: string }): void;
  /** The database is about to close (the UI stops polling it). */
  beforeDatabaseClose?(): Promise<void>;
  onWorker?(processId: string): void;
  isPaused?(entry: string): boolean;
}

export interface DemoSummary {
  entries: DemoEntryResult[];
  bin: { pending: number; failed: number };
  /** From the worker's start to the last backlog emptied. */
  durationMs: number;
  /** Starting the servers and seeding. */
  setupMs: number;
  /** The user stopped it, or it timed out. */
  outcome: "done" | "interrupted" | "timeout";
  /** Entries whose last run failed. */
  failures: Array<{ id: string; error: string }>;
  /** Certificates of the deleted team still waiting for a serial (none: the robots downloaded them). */
  pendingSerials: number;
  file: string;
}

const POLL_MS = 500;
const TEAM_DELETION_AFTER_MS = 3_000;

export async function runDemo(options: DemoOptions, hooks: DemoHooks = {}): Promise<DemoSummary> {
  const t0 = performance.now();
  const dir = join(options.cwd, ".purger", "demo");
  await mkdir(dir, { recursive: true });
  const stage = (text: string | null) => hooks.onStage?.(text);
  const sizes = demoSizes(options.scale ?? 1);
  const cleanups: Array<() => Promise<void>> = [];
  try {
    // The S3 server first: its endpoint goes into the config, and the config names the UI's entries.
    const startS3Server = await loadS3Server();
    const blob = startS3Server !== null;
    let s3Endpoint = "http://127.0.0.1:1";
    let s3Dir = "";
    if (startS3Server) {
      s3Dir = await mkdtemp(join(tmpdir(), "purger-demo-s3-"));
      const server = await startS3Server({ dir: s3Dir, buckets: [DEMO_BUCKET] });
      const dirToRemove = s3Dir;
      cleanups.push(async () => {
        await server.stop();
        await rm(dirToRemove, { recursive: true, force: true });
      });
      s3Endpoint = server.endpoint;
      // The plugin takes credentials from the SDK's default chain, as it would in production.
      Object.assign(process.env, {
        AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
        AWS_REGION: "us-east-1",
        // The SDK warns on stderr that Node 20 support ends some day: not the demo's business.
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      });
    }
    const parts = await availableParts(blob);
    const file = join(dir, "purger.yaml");
    await writeFile(file, demoConfigYaml({ s3Endpoint, bucket: DEMO_BUCKET }, parts));
    // Validated like a user's file. The database's URL is known once the server runs; the UI opens before.
    const loaded = await loadConfig({
      configPath: file,
      cwd: options.cwd,
      env: { ...options.env, [DEMO_DATABASE_URL_VAR]: "postgres://127.0.0.1/purger_demo" },
      resolvePaths: [cliPackageDir],
    });
    await hooks.onConfig?.(loaded, file);

    stage("starting the embedded PostgreSQL (the first time, initdb takes a little while)…");
    const server = await startEmbeddedPostgres({ dir: join(dir, "pg"), log: options.log });
    cleanups.push(() => server.stop());
    const url = await recreateDatabase(server.url, "purger_demo");
    const config: PurgerConfig = { ...loaded, database: { url } };

    const db: Database = await connectDatabase(config, { log: options.log, cwd: options.cwd });
    cleanups.push(async () => {
      await hooks.beforeDatabaseClose?.();
      await db.close();
    });
    hooks.onDatabase?.({ url, label: `embedded PostgreSQL (${join(".purger", "demo", "pg")}) · ${redactUrl(url)}` });

    await db.pool.query(DEMO_SCHEMA_SQL);
    for (const step of demoSeedSql(sizes)) {
      if (options.signal.aborted) break;
      stage(`seeding ${step.label}…`);
      await db.pool.query(step.sql);
    }
    if (blob && !options.signal.aborted) {
      const client = demoS3Client(s3Endpoint);
      try {
        await seedBucket(client, sizes, s3Dir, (done, total) =>
          stage(`seeding the bucket: ${done.toLocaleString("en-US")}/${total.toLocaleString("en-US")} objects…`),
        );
      } finally {
        client.destroy();
      }
    }
    stage(null);
    const setupMs = Math.round(performance.now() - t0);

    return await work({ options, hooks, config, db, setupMs, file });
  } finally {
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((error: unknown) => options.log.warn({ error: String(error) }, "demo clean-up failed"));
  }
}

interface WorkInput {
  options: DemoOptions;
  hooks: DemoHooks;
  config: PurgerConfig;
  db: Database;
  setupMs: number;
  file: string;
}

/** Run the worker until every entry has run, the bin is empty and no entry has anything left. */
async function work({ options, hooks, config, db, setupMs, file }: WorkInput): Promise<DemoSummary> {
  const stats = new DemoStats(
    options.events,
    config.entries.map((e) => ({ id: e.id, plugin: e.plugin.name })),
  );
  for (const entry of config.entries) if (!entry.runOnStart && !entry.schedule) stats.markRan(entry.id);
  const kinds = new Set(config.entries.flatMap((e) => Object.keys(e.plugin.bin ?? {}).map((h) => `${e.id}.${h}`)));
  const started = performance.now();
  const worker = await startWorker({
    config,
    pool: db.pool,
    events: options.events,
    log: options.log,
    ...(hooks.isPaused ? { isPaused: hooks.isPaused } : {}),
  });
  hooks.onWorker?.(worker.processId);
  // A few seconds into the work, the fleet's web server deletes a team (as it would at any time).
  const kindOf = (entry: string, handler: string) =>
    config.entries.some((e) => e.id === entry && e.plugin.bin?.[handler]) ? `${entry}.${handler}` : null;
  const teamDeleted = sleep(TEAM_DELETION_AFTER_MS, options.signal)
    .then(() =>
      options.signal.aborted
        ? null
        : deleteTeam(db.pool, {
            prefix: kindOf("team-objects", "prefix"),
            revoke: kindOf("robot-certs", "revoke"),
            credential: kindOf("robot-certs", "credential"),
          }),
    )
    .catch((error: unknown) => {
      options.log.error({ error: String(error) }, "the demo's team deletion failed");
      return null;
    });
  let deleted = false;
  void teamDeleted.then(() => (deleted = true));
  let outcome: DemoSummary["outcome"] = "done";
  let downloaded = false;
  let bin = { pending: 0, failed: 0 };
  try {
    const deadline = started + (options.timeoutMs ?? 600_000);
    for (;;) {
      if (options.signal.aborted) {
        outcome = "interrupted";
        break;
      }
      if (performance.now() > deadline) {
        outcome = "timeout";
        break;
      }
      bin = sumDepth(await binDepth(db.pool), kinds);
      // Once the team's revocations are handled, its robots download their pending certificates:
      // serials appear, and the certs sweep revokes them.
      if (bin.pending === 0 && !downloaded && deleted) {
        downloaded = true;
        await downloadPendingCertificates(db.pool);
      }
      if (deleted && downloaded && stats.everyEntryRan && bin.pending === 0) {
        // Done when nothing is left, except where an entry keeps failing (reported, not waited for).
        const asked = performance.now();
        const left = await entriesWithWorkLeft(config.entries, db, options.log);
        const failing = new Set(stats.failures.map((f) => f.id));
        options.log.debug({ event: "demo:left", left, failing: [...failing], ms: Math.round(performance.now() - asked) }, "work left");
        if (left.every((id) => failing.has(id))) break;
      }
      await sleep(POLL_MS, options.signal);
    }
  } finally {
    await teamDeleted;
    await worker.stop();
    stats.stop();
  }
  const durationMs = Math.round(performance.now() - started);
  bin = sumDepth(await binDepth(db.pool), kinds);
  const pendingSerials = await countPendingSerials(db.pool);
  return { entries: stats.results(), bin, durationMs, setupMs, outcome, failures: stats.failures, pendingSerials, file };
}

/**
 * Entries where something still qualifies: the plugin's exact `count` capped
 * at one (an `estimate` may be the planner's, stale right after a big delete),
 * else its estimate.
 */
async function entriesWithWorkLeft(entries: EntryConfig[], db: Database, log: Logger): Promise<string[]> {
  const left: string[] = [];
  for (const entry of entries) {
    if (!entry.plugin.batch || !entry.enabled) continue;
    const items = await qualifying(entry, db.pool, log).catch(() => null);
    if (items !== null && items > 0) left.push(entry.id);
  }
  return left;
}

async function qualifying(entry: EntryConfig, pool: pg.Pool, log: Logger): Promise<number | null> {
  const plugin = entry.plugin;
  if (!plugin.count) return estimateEntry({ pool, entry, configDir: "", log });
  const batchSize = typeof entry.batchSize === "number" ? entry.batchSize : entry.batchSize.initial;
  const base = {
    entry: { id: entry.id, retentionMs: entry.retentionMs, configDir: "" },
    options: entry.options,
    pool,
    log: log.child({ entry: entry.id }),
    signal: new AbortController().signal,
  };
  const state: unknown = plugin.prepare ? await plugin.prepare(base) : undefined;
  try {
    const startedAt = new Date();
    const cutoff = new Date(startedAt.getTime() - (entry.retentionMs ?? 0));
    return await plugin.count({ ...base, state, startedAt, cutoff, dryRun: true, batchSize }, 1);
  } finally {
    if (plugin.release) await plugin.release(state);
  }
}

function sumDepth(
  depth: Array<{ kind: string; pending: number; failed: number }>,
  kinds: Set<string>,
): { pending: number; failed: number } {
  let pending = 0;
  let failed = 0;
  for (const d of depth) {
    if (!kinds.has(d.kind)) continue;
    pending += d.pending;
    failed += d.failed;
  }
  return { pending, failed };
}

async function countPendingSerials(pool: pg.Pool): Promise<number> {
  const { rows } = await pool
    .query<{ n: number }>("SELECT count(*)::int AS n FROM fleet.certificates WHERE status = 'revoking'")
    .catch(() => ({ rows: [{ n: 0 }] }));
  return rows[0]?.n ?? 0;
}

/** A fresh database on the embedded server: the same data on every run. */
async function recreateDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new URL(serverUrl);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

type StartS3Server = (typeof import("@purger/plugin-blob/testing"))["startS3Server"];

/**
 * The in-process S3 server of the blob plugin's testing entry, loaded only
 * here: it needs s3rver, the CLI's optional dependency, which a production
 * install (`--omit=optional`) leaves out. Null when the blob plugin is not in
 * the tree (the demo goes on without it).
 */
async function loadS3Server(): Promise<StartS3Server | null> {
  try {
    return (await import("@purger/plugin-blob/testing")).startS3Server;
  } catch (error) {
    if (isMissingPackage(error, "s3rver")) {
      throw new PurgerError(
        "PLUGIN",
        "the demo's in-process S3 server needs s3rver, an optional dependency of @purger/cli that is not installed (npm install --omit=optional leaves it out)",
        { hint: "npm install s3rver", cause: error },
      );
    }
    if (isMissingPackage(error, "@purger/plugin-blob")) return null;
    throw error;
  }
}

function isMissingPackage(error: unknown, name: string): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return e?.code === "ERR_MODULE_NOT_FOUND" && typeof e.message === "string" && e.message.includes(`'${name}'`);
}

/** The parts whose plugin loads (a plugin not in the tree, or not finished, is left out). */
async function availableParts(withS3: boolean): Promise<DemoPart[]> {
  const parts: DemoPart[] = [];
  for (const part of DEMO_PARTS) {
    if (part.plugin === "@purger/plugin-blob" && !withS3) continue;
    try {
      const module = (await import(part.plugin)) as { default?: { name?: string } };
      if (module.default?.name) parts.push(part);
    } catch {
      // not available: the demo goes on without it
    }
  }
  return parts;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
