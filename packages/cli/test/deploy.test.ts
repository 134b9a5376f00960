/**
 * deploy/: the Dockerfile, the Kubernetes example and the systemd unit, checked with what this machine has.
 * There is no docker engine here, so the image is never built: its ENTRYPOINT + CMD are read from the Dockerfile and
 * run as a plain process (tini included, from /usr/bin/tini) with the repository's CLI standing in for the installed
 * one and the Kubernetes ConfigMap's purger.yaml as /etc/purger/purger.yaml. The unit goes through
 * `systemd-analyze verify`. See deploy/README.md.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_DEFAULTS, loadConfig, type PurgerConfig } from "@purger/core/host";
import { createTestDatabase } from "@purger/core/testing";
import { parseLogLines, purger, purgerBin, repoRoot, tempDir, type LogLine } from "./helpers.js";

// The CLI has no YAML parser of its own; core's (a runtime dependency of core) reads the manifests.
const YAML = (await import(pathToFileURL(createRequire(join(repoRoot, "packages/core/package.json")).resolve("yaml")).href)) as {
  parseAllDocuments(text: string): Array<{ errors: unknown[]; toJS(): unknown }>;
};

const deploy = join(repoRoot, "deploy");
const TINI = "/usr/bin/tini";
const TOKEN = "deploy-test-token";

/** Where the image has things, and where they are in this checkout. */
const IMAGE_CLI = "/app/node_modules/@purger/cli/bin/purger.js";
const IMAGE_CONFIG = "/etc/purger/purger.yaml";

interface Dockerfile {
  stages: string[];
  user: string | undefined;
  workdir: string | undefined;
  env: Record<string, string>;
  expose: string[];
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
}

/** The instructions that matter of the final stage (continuation lines joined; exec forms parsed as JSON). */
function parseDockerfile(text: string): Dockerfile {
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const result: Dockerfile = {
    stages: [],
    user: undefined,
    workdir: undefined,
    env: {},
    expose: [],
    entrypoint: [],
    cmd: [],
    healthcheck: [],
  };
  const exec = (form: string, instruction: string): string[] => {
    expect(form.startsWith("["), `${instruction} in exec form (JSON), so tini is PID 1 and no shell eats SIGTERM`).toBe(true);
    return JSON.parse(form) as string[];
  };
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = line.slice(instruction!.length).trim();
    switch (instruction!.toUpperCase()) {
      case "FROM":
        result.stages.push(args);
        result.user = undefined;
        result.env = {};
        break;
      case "USER":
        result.user = args;
        break;
      case "WORKDIR":
        result.workdir = args;
        break;
      case "ENV":
        for (const pair of rest) {
          const [key, value] = pair.split("=");
          result.env[key!] = value ?? "";
        }
        break;
      case "EXPOSE":
        result.expose.push(...rest);
        break;
      case "ENTRYPOINT":
        result.entrypoint = exec(args, "ENTRYPOINT");
        break;
      case "CMD":
        result.cmd = exec(args, "CMD");
        break;
      case "HEALTHCHECK":
        result.healthcheck = exec(args.slice(args.indexOf("CMD") + 3).trim(), "HEALTHCHECK");
        break;
    }
  }
  return result;
}

interface Manifests {
  configYaml: string;
  deployment: Record<string, any>;
  cronJob: Record<string, any>;
}

function parseManifests(text: string): Manifests {
  const docs = YAML.parseAllDocuments(text).map((doc) => {
    expect(doc.errors).toEqual([]);
    return doc.toJS() as Record<string, any>;
  });
  const byKind = (kind: string) => {
    const found = docs.filter((d: Record<string, any>) => d["kind"] === kind);
    expect(found, kind).toHaveLength(1);
    return found[0]!;
  };
  return { configYaml: byKind("ConfigMap")["data"]["purger.yaml"] as string, deployment: byKind("Deployment"), cronJob: byKind("CronJob") };
}

const dockerfile = parseDockerfile(readFileSync(join(deploy, "Dockerfile"), "utf8"));
const manifests = parseManifests(readFileSync(join(deploy, "kubernetes/purger.yaml"), "utf8"));

let project: { dir: string; cleanup(): void };
let configFile: string;
let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  project = tempDir("purger-deploy-");
  configFile = join(project.dir, "purger.yaml");
  writeFileSync(configFile, manifests.configYaml);
  db = await createTestDatabase();
  await db.pool.query("CREATE TABLE oauth2_access_tokens (id bigserial PRIMARY KEY, revoked_at timestamptz)");
  await db.pool.query("CREATE INDEX ON oauth2_access_tokens (revoked_at)");
  // 20 revoked two hours ago (past the entry's 1h), 5 revoked just now, 5 never revoked.
  await db.pool.query(
    `INSERT INTO oauth2_access_tokens (revoked_at)
     SELECT CASE WHEN g <= 20 THEN now() - interval '2 hours' WHEN g <= 25 THEN now() ELSE NULL END FROM generate_series(1, 30) g`,
  );
});

afterAll(async () => {
  await db?.drop();
  project?.cleanup();
});

/** The ConfigMap's purger.yaml as `purger run` resolves it in the pod (secrets from the Secret). */
async function podConfig(env: Record<string, string> = {}): Promise<PurgerConfig> {
  return loadConfig({
    configPath: configFile,
    cwd: project.dir,
    env: { DATABASE_URL: "postgres://purger@db.internal/app", PURGER_ADMIN_TOKEN: TOKEN, ...env },
    resolvePaths: [join(repoRoot, "packages/cli")],
  });
}

describe("deploy/kubernetes/purger.yaml", () => {
  it("the ConfigMap's purger.yaml passes `purger validate` with the Secret's variables unset", async () => {
    const exit = await purger(["validate", "--config", configFile], {
      cwd: project.dir,
      env: { DATABASE_URL: undefined, PURGER_ADMIN_TOKEN: undefined, PURGER_HTTP_LISTEN: undefined },
    });
    expect(exit.code, exit.stderr).toBe(0);
    // Left unchecked, and said so: what a CI job without the secrets can check is checked.
    expect(exit.stdout).toContain(
      "warning: purger.yaml:2:8 database.url: not checked: environment variable DATABASE_URL is not set here\n",
    );
    expect(exit.stdout).toContain("valid, 1 entry\n  revoked-access-tokens: @purger/plugin-retention, retention 1h\n");
  });

  it("terminationGracePeriodSeconds exceed worker.shutdownTimeout, so SIGTERM drains before the kill", async () => {
    const { shutdownTimeoutMs } = (await podConfig()).worker;
    const deployment = manifests.deployment["spec"]["template"]["spec"];
    const cronJob = manifests.cronJob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    expect(deployment["terminationGracePeriodSeconds"] * 1000).toBeGreaterThan(shutdownTimeoutMs);
    expect(cronJob["terminationGracePeriodSeconds"] * 1000).toBeGreaterThan(shutdownTimeoutMs);
  });

  it("the probes point at /healthz and /readyz of the admin port, which answer them without a token", async () => {
    const config = await podConfig();
    const container = manifests.deployment["spec"]["template"]["spec"]["containers"][0];
    const admin = (container["ports"] as { name: string; containerPort: number }[]).find((p) => p.name === "admin");
    expect(admin?.containerPort).toBe(Number(config.http!.listen.split(":").at(-1)));
    expect(config.http!.listen).toBe("0.0.0.0:9464");
    expect(container["livenessProbe"]["httpGet"]).toEqual({ path: "/healthz", port: "admin" });
    expect(container["readinessProbe"]["httpGet"]).toEqual({ path: "/readyz", port: "admin" });
    // A kubelet sends no token.
    expect(config.http!.probesWithoutToken).toBe(true);
  });

  it("the pods run the image's command line as its non-root user, with the config where the image reads it", () => {
    const pod = manifests.deployment["spec"]["template"]["spec"];
    expect(pod["containers"][0]["args"]).toEqual(dockerfile.cmd);
    expect(pod["containers"][0]["volumeMounts"]).toContainEqual({ name: "config", mountPath: "/etc/purger", readOnly: true });
    expect(pod["securityContext"]).toEqual({ runAsNonRoot: true, runAsUser: 10001 });
    expect(dockerfile.user).toBe("purger");
    expect(readFileSync(join(deploy, "Dockerfile"), "utf8")).toContain("useradd --system --uid 10001");
    const job = manifests.cronJob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    expect(job["containers"][0]["args"]).toEqual(["once", "revoked-access-tokens", "--json", "--config", IMAGE_CONFIG]);
  });
});

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** The image's command line with this checkout's paths: the image's node, CLI and config file. */
function localCommand(argv: string[]): string[] {
  return argv.map((arg) => (arg === "node" ? process.execPath : arg === IMAGE_CLI ? purgerBin : arg === IMAGE_CONFIG ? configFile : arg));
}

interface Container {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs(): LogLine[];
}

/** The container's process, as docker would start it: ENTRYPOINT + CMD (or args), ENV, WORKDIR. */
function startContainer(args: string[], env: Record<string, string>): Container {
  const [command, ...rest] = localCommand([...dockerfile.entrypoint, ...args]);
  const child = spawn(command!, rest, {
    cwd: project.dir,
    // tini is PID 1 in the container; here it is not, so it registers as a subreaper instead (and does not warn).
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...dockerfile.env, TINI_SUBREAPER: "1", PURGER_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const container: Container = {
    child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => resolve({ code, signal }));
    }),
    logs: () => parseLogLines(container.stderr),
  };
  child.stdout!.setEncoding("utf8").on("data", (text: string) => (container.stdout += text));
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (container.stderr += text));
  return container;
}

async function waitForLog(container: Container, predicate: (line: LogLine) => boolean, what: string): Promise<LogLine> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const found = container.logs().find(predicate);
    if (found) return found;
    if (container.child.exitCode !== null || container.child.signalCode !== null) {
      throw new Error(`the container's process exited before ${what}\nstderr:\n${container.stderr}`);
    }
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}\nstderr:\n${container.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("deploy/Dockerfile (no docker engine here: its entry point runs as a plain process)", () => {
  it("is multi-stage, runs as a non-root user and starts the CLI under tini, in exec form", () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile.user).toBe("purger");
    expect(dockerfile.entrypoint.slice(0, 2)).toEqual([TINI, "--"]);
    expect(dockerfile.entrypoint.slice(2)).toEqual(["node", IMAGE_CLI]);
    expect(dockerfile.cmd).toEqual(["run", "--no-tui", "--config", IMAGE_CONFIG]);
    expect(dockerfile.expose).toEqual(["9464"]);
  });

  it("ENTRYPOINT + CMD: /healthz and /readyz answer while it runs, the HEALTHCHECK passes, SIGTERM to tini drains and exits 0", async () => {
    expect(existsSync(TINI), `${TINI} is missing: apt-get install -y tini (.ci/run does)`).toBe(true);
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const container = startContainer(dockerfile.cmd, { DATABASE_URL: db.url, PURGER_ADMIN_TOKEN: TOKEN, PURGER_HTTP_LISTEN: address });
    try {
      await waitForLog(container, (l) => l.event === "worker:start", "purger is running");
      expect(await (await fetch(`http://${address}/healthz`)).json()).toEqual({ ok: true });
      const ready = await fetch(`http://${address}/readyz`);
      expect(ready.status).toBe(200);
      expect((await fetch(`http://${address}/v1/status`)).status).toBe(401);

      const [check, ...checkArgs] = localCommand(dockerfile.healthcheck.map((arg) => arg.replaceAll("127.0.0.1:9464", address)));
      const healthcheck = spawnSync(check!, checkArgs, { encoding: "utf8", timeout: 10_000 });
      expect({ status: healthcheck.status, stderr: healthcheck.stderr }).toEqual({ status: 0, stderr: "" });

      // The signal goes to tini (PID 1 in the container), which forwards it to purger.
      container.child.kill("SIGTERM");
      const exit = await container.exited;
      expect({ exit, stderr: container.stderr.includes("shutdown timeout passed") }).toEqual({
        exit: { code: 0, signal: null },
        stderr: false,
      });
      expect(container.logs().some((l) => String(l.msg).startsWith("draining: running batches finish"))).toBe(true);
    } finally {
      if (container.child.exitCode === null) container.child.kill("SIGKILL");
      await container.exited.catch(() => {});
    }
  });

  it("the CronJob's args through the same entry point: `once` deletes what is past retention and exits 0", async () => {
    expect(existsSync(TINI), `${TINI} is missing: apt-get install -y tini (.ci/run does)`).toBe(true);
    const args = manifests.cronJob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] as string[];
    const container = startContainer(args, { DATABASE_URL: db.url, PURGER_ADMIN_TOKEN: TOKEN });
    const exit = await container.exited;
    expect(exit, container.stderr).toEqual({ code: 0, signal: null });
    expect(JSON.parse(container.stdout)).toMatchObject({ status: "succeeded", processed: 20 });
    const { rows } = await db.pool.query<{ revoked: number; kept: number }>(
      "SELECT count(revoked_at)::int AS revoked, count(*)::int AS kept FROM oauth2_access_tokens",
    );
    expect(rows[0]).toEqual({ revoked: 5, kept: 10 });
  });
});

describe("deploy/systemd/purger.service", () => {
  const unit = readFileSync(join(deploy, "systemd/purger.service"), "utf8");
  const setting = (key: string): string | undefined => new RegExp(`^${key}=(.*)$`, "m").exec(unit)?.[1];

  it("passes systemd-analyze verify, with the installed CLI's path pointed at this checkout", () => {
    // verify checks that ExecStart's program exists; /opt/purger is where the README installs it, not here.
    const dir = tempDir("purger-systemd-");
    try {
      const copy = join(dir.dir, "purger.service");
      writeFileSync(
        copy,
        unit.replaceAll("/usr/bin/node", process.execPath).replaceAll("/opt/purger/node_modules/@purger/cli/bin/purger.js", purgerBin),
      );
      const verify = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
      expect({ status: verify.status, stdout: verify.stdout, stderr: verify.stderr }).toEqual({ status: 0, stdout: "", stderr: "" });
    } finally {
      dir.cleanup();
    }
  });

  it("stops with SIGTERM and waits longer than the default worker.shutdownTimeout before killing", () => {
    expect(setting("ExecStart")).toBe(
      `/usr/bin/node /opt/purger/node_modules/@purger/cli/bin/purger.js run --no-tui --config /etc/purger/purger.yaml`,
    );
    expect(setting("KillSignal")).toBe("SIGTERM");
    expect(Number(setting("TimeoutStopSec")) * 1000).toBeGreaterThan(CONFIG_DEFAULTS.shutdownTimeoutMs);
    expect(setting("User")).toBe("purger");
  });
});
