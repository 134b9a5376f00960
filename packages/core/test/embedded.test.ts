import { mkdtemp, readFile, readlink, realpath, rm, stat, writeFile, lstat } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, test } from "vitest";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { isPurgerError } from "../src/errors.js";

const isRoot = process.getuid?.() === 0;
const cleanup: string[] = [];

afterAll(async () => {
  for (const path of cleanup) {
    // As root, data of a directory only root may enter lives in /var/lib/purger behind a symlink.
    for (const link of [join(path, "pg", "data"), join(path, ".purger", "pg", "data")]) {
      const target = await readlink(link).catch(() => undefined);
      if (target) await rm(target, { recursive: true, force: true });
    }
    await rm(path, { recursive: true, force: true });
  }
});

/** A fresh directory like `mktemp -d`: mode 0700, so only its owner (here maybe root) may enter it. */
async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "purger-embedded-"));
  cleanup.push(dir);
  return dir;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** The uid the server runs as (its checkpointer's, from /proc). */
async function postmasterUid(url: string): Promise<number> {
  const [row] = await query<{ pid: number }>(url, "select pid from pg_stat_activity where backend_type = 'checkpointer'");
  const status = await readFile(`/proc/${row?.pid}/status`, "utf8");
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}

describe("startEmbeddedPostgres", () => {
  let dir: string;
  let firstUrl: string;

  test("initialises a cluster in an empty directory, serves the purger database, stops", async () => {
    dir = join(await makeTempDir(), "pg");
    const server = await startEmbeddedPostgres({ dir });
    expect(server.owned).toBe(true);
    firstUrl = server.url;
    expect(server.url).toMatch(/^postgres:\/\/postgres:[0-9a-f]+@127\.0\.0\.1:\d+\/purger$/);
    expect(await query(server.url, "select 1 as one, current_database() as db")).toEqual([{ one: 1, db: "purger" }]);
    await query(server.url, "create table kept (id int); insert into kept values (42)");
    await server.stop();
    await expect(query(server.url, "select 1")).rejects.toThrow(/ECONNREFUSED/);
  });

  test("reuses the cluster on the next start: same port, data kept, no initdb", async () => {
    const versionFile = join(await realpath(join(dir, "data")), "PG_VERSION");
    const initialisedAt = (await stat(versionFile)).mtimeMs;
    const first = await startEmbeddedPostgres({ dir });
    try {
      expect(first).toMatchObject({ owned: true, url: firstUrl });
      expect(await query(first.url, "select id from kept")).toEqual([{ id: 42 }]);
      expect((await stat(versionFile)).mtimeMs).toBe(initialisedAt);
    } finally {
      await first.stop();
    }
  });

  test("a second start while the server runs joins it (owned: false) and its stop() leaves the server up", async () => {
    const first = await startEmbeddedPostgres({ dir });
    try {
      const second = await startEmbeddedPostgres({ dir });
      expect(second).toMatchObject({ owned: false, url: first.url });
      expect(await query(second.url, "select id from kept")).toEqual([{ id: 42 }]);
      await second.stop();
      expect(await query(first.url, "select 1 as one")).toEqual([{ one: 1 }]);
    } finally {
      await first.stop();
    }
  });

  test("a server whose owner process died is adopted (owned: true) and stopped by the new owner", async () => {
    const first = await startEmbeddedPostgres({ dir });
    const stateFile = join(await realpath(join(dir, "data")), "purger.json");
    const state = JSON.parse(await readFile(stateFile, "utf8")) as Record<string, unknown>;
    await writeFile(stateFile, JSON.stringify({ ...state, ownerPid: await deadPid() }));
    const adopted = await startEmbeddedPostgres({ dir });
    expect(adopted).toMatchObject({ owned: true, url: first.url });
    await adopted.stop();
    await expect(query(first.url, "select 1")).rejects.toThrow(/ECONNREFUSED/);
    await first.stop();
  });

  test.each([
    ["a dead process", deadPid],
    ["a live process that is not this server (a reused pid)", async () => process.pid],
  ])("a stale postmaster.pid naming %s does not block the start", async (_, stalePid) => {
    const pidFile = join(await realpath(join(dir, "data")), "postmaster.pid");
    await writeFile(pidFile, `${await stalePid()}\n${dir}\n0\n5432\n\n127.0.0.1\n0 0\nready\n`);
    const server = await startEmbeddedPostgres({ dir });
    try {
      expect(server.owned).toBe(true);
      expect(await query(server.url, "select id from kept")).toEqual([{ id: 42 }]);
    } finally {
      await server.stop();
    }
  });

  test("a port that is taken fails with a DATABASE error quoting the server log", async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, "127.0.0.1", () => resolve((blocker.address() as { port: number }).port)),
    );
    try {
      const error: unknown = await startEmbeddedPostgres({ dir, port }).catch((caught: unknown) => caught);
      expect(isPurgerError(error, "DATABASE")).toBe(true);
      expect((error as Error).message).toMatch(/did not start[\s\S]*could not bind IPv4 address "127\.0\.0\.1": Address already in use/);
      expect((error as { hint?: string }).hint).toContain(join(dir, "postgres.log"));
    } finally {
      blocker.close();
    }
  });

  test(
    isRoot
      ? "as root, a checkout in a root-only directory (mktemp -d) works: postgres runs as its own user, data outside"
      : "as a regular user, postgres runs as that user with the data inside the directory",
    async () => {
      const checkout = await makeTempDir();
      expect((await stat(checkout)).mode & 0o777).toBe(0o700);
      const pgDir = join(checkout, ".purger", "pg");
      const server = await startEmbeddedPostgres({ dir: pgDir });
      try {
        expect(await query(server.url, "select 1 as one")).toEqual([{ one: 1 }]);
        const [{ data_directory: dataDirectory } = { data_directory: "" }] = await query<{ data_directory: string }>(
          server.url,
          "show data_directory",
        );
        if (isRoot) {
          expect((await lstat(join(pgDir, "data"))).isSymbolicLink()).toBe(true);
          expect(await readlink(join(pgDir, "data"))).toBe(dataDirectory);
          expect(dataDirectory).toMatch(/^\/var\/lib\/purger\/data-[0-9a-f]{16}$/);
          expect(await postmasterUid(server.url)).not.toBe(0);
        } else {
          expect(dataDirectory).toBe(join(pgDir, "data"));
          expect(await postmasterUid(server.url)).toBe(process.getuid?.());
        }
        expect((await stat(checkout)).mode & 0o777).toBe(0o700);
      } finally {
        await server.stop();
      }
    },
  );
});

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid ?? 999_999;
}
