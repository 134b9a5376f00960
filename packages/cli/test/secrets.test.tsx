/**
 * Secrets never shown, logs never written through a planted path: a database
 * password in the URL's userinfo or its query string (`?password=`,
 * `?sslpassword=`) appears in no output — `doctor` text and `--json`, the
 * service's JSON logs, the UI's log file and its header — and the UI's log
 * file is created 0600 without following a symbolic link.
 */
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cleanup, render } from "ink-testing-library";
import { PurgerEventEmitter, resolveConfig } from "@purger/core/host";
import { createTestDatabase, type TestDatabase } from "@purger/core/testing";
import { connectDatabase } from "../src/database.js";
import { App } from "../src/ui/App.js";
import { createTuiLog } from "../src/ui/command-tui.js";
import { TuiStore } from "../src/ui/tui-store.js";
import { configText, purger, purgerBin, retentionEntry, seedTable, spawnPurger, tempDir, writeConfig } from "./helpers.js";

let db: TestDatabase;
/** The test server's real password, and one for the TLS key (ignored without TLS, but a secret all the same). */
let password: string;
const sslPassword = "ssl-key-passphrase-4711";
/** postgres://postgres@host:port/db?password=…&sslpassword=…&application_name=…: the password only in the query. */
let queryUrl: string;
/** postgres://postgres:…@host:port/db?sslmode=disable&sslpassword=…: the password in the userinfo. */
let userinfoUrl: string;
let shownUrl: string;
const dirs: Array<{ cleanup(): void }> = [];

beforeAll(async () => {
  db = await createTestDatabase("secrets");
  await seedTable(db.pool, "events", 10, 10);
  const url = new URL(db.url);
  password = decodeURIComponent(url.password);
  url.password = "";
  url.search = `?password=${encodeURIComponent(password)}&sslpassword=${sslPassword}&application_name=purger-secrets`;
  queryUrl = url.toString();
  const withUserinfo = new URL(db.url);
  withUserinfo.search = `?sslmode=disable&sslpassword=${sslPassword}`;
  userinfoUrl = withUserinfo.toString();
  shownUrl = `${url.host}${url.pathname}`;
});

afterAll(async () => {
  for (const dir of dirs) dir.cleanup();
  await db?.drop();
});

afterEach(() => {
  cleanup();
});

function project(url: string): string {
  const temp = tempDir("purger-secrets-");
  dirs.push(temp);
  writeConfig(temp.dir, configText({ url, plugins: retentionEntry({ id: "old-events", table: "events" }) }));
  return temp.dir;
}

/** The text with the test server's address made stable. */
function stable(text: string): string {
  return text.replaceAll(shownUrl, "<host>/<db>");
}

function expectNoSecret(text: string): void {
  expect(text).not.toContain(password);
  expect(text).not.toContain(encodeURIComponent(password));
  expect(text).not.toContain(sslPassword);
}

describe("database passwords are never shown", () => {
  it("doctor: the text names the database without its password, whether in the query string or the userinfo", async () => {
    const fromQuery = await purger(["doctor"], { cwd: project(queryUrl) });
    expect(fromQuery.code, fromQuery.stderr).toBe(0);
    expectNoSecret(fromQuery.stdout + fromQuery.stderr);
    expect(stable(fromQuery.stdout.split("\n")[0]!)).toMatchInlineSnapshot(
      `"database: postgres://postgres@<host>/<db>?password=***&sslpassword=***&application_name=purger-secrets: ok"`,
    );

    const fromUserinfo = await purger(["doctor"], { cwd: project(userinfoUrl) });
    expect(fromUserinfo.code, fromUserinfo.stderr).toBe(0);
    expectNoSecret(fromUserinfo.stdout + fromUserinfo.stderr);
    expect(stable(fromUserinfo.stdout.split("\n")[0]!)).toMatchInlineSnapshot(
      `"database: postgres://postgres:***@<host>/<db>?sslmode=disable&sslpassword=***: ok"`,
    );
  });

  it("doctor --json: the database field carries no password", async () => {
    const result = await purger(["doctor", "--json"], { cwd: project(queryUrl) });
    expect(result.code, result.stderr).toBe(0);
    expectNoSecret(result.stdout + result.stderr);
    expect(stable((JSON.parse(result.stdout) as { database: string }).database)).toMatchInlineSnapshot(
      `"postgres://postgres@<host>/<db>?password=***&sslpassword=***&application_name=purger-secrets"`,
    );
  });

  it("run --no-tui: the worker's JSON logs carry no password", async () => {
    const child = spawnPurger(["run", "--no-tui"], { cwd: project(queryUrl) });
    try {
      const started = await child.waitForLog((line) => line.event === "worker:start");
      expect(stable(String(started["database"]))).toMatchInlineSnapshot(
        `"postgres://postgres@<host>/<db>?password=***&sslpassword=***&application_name=purger-secrets"`,
      );
      child.kill("SIGTERM");
      const exit = await child.exited;
      expect(exit.stderr).toContain('"msg":"purger is running"');
      expectNoSecret(exit.stdout + exit.stderr);
    } finally {
      await child.stop();
    }
  });

  it("the UI's header shows the database without its password", async () => {
    const config = await resolveConfig({ database: { url: queryUrl }, plugins: [] }, { env: {} });
    const database = await connectDatabase(config, { log: createTuiLog(tempDir().dir, {}).log });
    try {
      const store = new TuiStore({
        mode: "run",
        title: "run",
        entries: [],
        events: new PurgerEventEmitter(),
        processId: "host:1",
        concurrency: 1,
        logFile: ".purger/purger.log",
        now: () => 0,
      });
      store.setDatabase(database.label);
      const ui = render(<App store={store} columns={200} rows={20} />);
      store.flush();
      await new Promise((resolve) => setImmediate(resolve));
      // eslint-disable-next-line no-control-regex
      const frame = (ui.lastFrame() ?? "").replace(/\u001B\[[0-9;]*[A-Za-z]/g, " ");
      expectNoSecret(frame);
      expect(stable(frame)).toContain("db postgres://postgres@<host>/<db>?password=***&sslpassword=***&application_name=purger-secrets");
    } finally {
      await database.close();
    }
  });
});

describe("the UI's log file", () => {
  it("is created 0600 under .purger/, and an existing one readable by others is made 0600", () => {
    const { dir } = tempDir("purger-log-");
    dirs.push({ cleanup: () => execFileSync("rm", ["-rf", dir]) });
    const first = createTuiLog(dir, {});
    first.log.info({ event: "test:line" }, "first");
    expect(first.logFile).toBe(join(dir, ".purger", "purger.log"));
    expect(statSync(first.logFile).mode & 0o777).toBe(0o600);
    execFileSync("chmod", ["0644", first.logFile]);
    const second = createTuiLog(dir, {});
    second.log.info({ event: "test:line" }, "second");
    expect(second.logFile).toBe(first.logFile);
    expect(statSync(second.logFile).mode & 0o777).toBe(0o600);
    expect(
      readFileSync(second.logFile, "utf8")
        .trim()
        .split("\n")
        .map((line) => (JSON.parse(line) as { msg: string }).msg),
    ).toEqual(["first", "second"]);
  });

  it("a symlinked .purger/purger.log is not written through: its target stays unchanged, the log goes to a private directory", () => {
    const { dir } = tempDir("purger-log-");
    dirs.push({ cleanup: () => execFileSync("rm", ["-rf", dir]) });
    const target = join(dir, "victim.txt");
    writeFileSync(target, "precious\n");
    mkdirSync(join(dir, ".purger"));
    symlinkSync(target, join(dir, ".purger", "purger.log"));

    const { log, logFile } = createTuiLog(dir, {});
    log.info({ event: "test:line" }, "where does this go");

    expect(readFileSync(target, "utf8")).toBe("precious\n");
    expect(lstatSync(join(dir, ".purger", "purger.log")).isSymbolicLink()).toBe(true);
    expect(logFile).not.toBe(join(dir, ".purger", "purger.log"));
    dirs.push({ cleanup: () => execFileSync("rm", ["-rf", dirname(logFile)]) });
    const fallback = statSync(dirname(logFile));
    expect([fallback.uid, fallback.mode & 0o777]).toEqual([process.getuid!(), 0o700]);
    expect(statSync(logFile).mode & 0o777).toBe(0o600);
    const lines = readFileSync(logFile, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { msg: string; reason?: string });
    expect(lines.map((line) => line.msg.replaceAll(dir, "<dir>"))).toMatchInlineSnapshot(`
      [
        "not logging to <dir>/.purger/purger.log",
        "where does this go",
      ]
    `);
    expect(lines[0]?.reason).toMatchInlineSnapshot(`"it is a symbolic link; purger does not write through one"`);
  });
});

const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasTmux)("purger run in a terminal (tmux)", () => {
  const socket = `purger-secrets-test-${process.pid}`;
  const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
  const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

  afterAll(() => {
    try {
      tmux("kill-server");
    } catch {
      // no session left
    }
  });

  it("the header on screen and the log file (0600) carry no password", async () => {
    const dir = project(queryUrl);
    const command = `cd ${quote(dir)} && env -u NODE_ENV -u FORCE_COLOR ${quote(process.execPath)} ${quote(purgerBin)} run; echo $? > rc; sleep 600`;
    tmux("new-session", "-d", "-s", "run", "-x", "160", "-y", "30", command);
    const logFile = join(dir, ".purger", "purger.log");
    const deadline = performance.now() + 60_000;
    let screen = "";
    while (!(existsSync(logFile) && readFileSync(logFile, "utf8").includes('"worker:start"') && /^db /m.test(screen))) {
      if (performance.now() > deadline) throw new Error(`timed out; screen:\n${screen}`);
      await sleep(150);
      screen = tmux("capture-pane", "-p", "-t", "run");
    }
    tmux("send-keys", "-t", "run", "q");
    while (!existsSync(join(dir, "rc")) || readFileSync(join(dir, "rc"), "utf8").trim() === "") {
      if (performance.now() > deadline) throw new Error(`no exit; screen:\n${tmux("capture-pane", "-p", "-t", "run")}`);
      await sleep(150);
    }
    expect(readFileSync(join(dir, "rc"), "utf8").trim()).toBe("0");
    const log = readFileSync(logFile, "utf8");
    expectNoSecret(screen);
    expectNoSecret(log);
    expect(stable(/^db (\S+)/m.exec(screen)?.[1] ?? "")).toMatchInlineSnapshot(
      `"postgres://postgres@<host>/<db>?password=***&sslpassword=***&application_name=purger-secrets"`,
    );
    expect(statSync(logFile).mode & 0o777).toBe(0o600);
  }, 90_000);
});

describe("errors that echo the connection string", () => {
  it("doctor against a fake PostgreSQL (socket level) whose error message repeats the URL and the password: shown redacted, exit 1", async () => {
    // No real server repeats a password; this one answers the startup message with an ErrorResponse that does.
    let echoed = "";
    const server = createServer((socket) => {
      socket.once("data", () => {
        const fields = [`SFATAL`, `C28000`, `M${echoed}`].map((field) => Buffer.from(`${field}\0`));
        const body = Buffer.concat([...fields, Buffer.from([0])]);
        const header = Buffer.alloc(5);
        header.write("E", 0);
        header.writeInt32BE(body.length + 4, 1);
        socket.end(Buffer.concat([header, body]));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const url = `postgres://app:${encodeURIComponent(password)}@127.0.0.1:${port}/auth?sslpassword=${sslPassword}`;
      echoed = `no such role for ${url} (password ${password}, key passphrase ${sslPassword})`;
      const result = await purger(["doctor"], { cwd: project(url) });
      expect(result.code).toBe(1);
      expectNoSecret(result.stdout + result.stderr);
      expect(result.stderr.replaceAll(String(port), "<port>")).toMatchInlineSnapshot(`
        "purger: no such role for postgres://app:***@127.0.0.1:<port>/auth?sslpassword=*** (password ***, key passphrase ***)
        "
      `);
    } finally {
      server.close();
    }
  });
});
