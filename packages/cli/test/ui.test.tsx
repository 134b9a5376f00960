/**
 * The terminal UI's frames, rendered by ink-testing-library from a real
 * TuiStore fed with the engine's own events (a fixed clock makes the frames
 * exact), and its keys.
 */
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render } from "ink-testing-library";
import { PurgerEventEmitter, type ClusterStatus, type RunRecord } from "@purger/core/host";
import { App } from "../src/ui/App.js";
import { TuiStore, type TuiMode, type TuiStoreOptions } from "../src/ui/tui-store.js";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

interface Setup {
  store: TuiStore;
  events: PurgerEventEmitter;
  clock: { now: number };
  quits: number[];
}

function setup(options: Partial<TuiStoreOptions> & { mode?: TuiMode; entries?: TuiStoreOptions["entries"] } = {}): Setup {
  const events = new PurgerEventEmitter();
  const clock = { now: T0 };
  const quits: number[] = [];
  const store = new TuiStore({
    mode: "once",
    title: "once revoked-access-tokens",
    entries: [{ id: "revoked-access-tokens", plugin: "@purger/plugin-retention", kinds: [] }],
    processId: "db-host:4242",
    concurrency: 1,
    database: "postgres://purger:***@db-host:5432/auth",
    logFile: ".purger/purger.log",
    onQuit: () => quits.push(clock.now),
    ...options,
    events,
    now: () => clock.now,
  });
  return { store, events, clock, quits };
}

/** Let React commit the store's update (a microtask) and Ink draw it. */
async function settle(store: TuiStore): Promise<void> {
  store.flush();
  await new Promise((resolve) => setImmediate(resolve));
}

function start(events: PurgerEventEmitter, entry: string, total: number | null, runId = "1"): void {
  events.emit("run:start", {
    runId,
    entry,
    plugin: "@purger/plugin-retention",
    trigger: "manual",
    dryRun: false,
    cutoff: new Date(T0 - 3_600_000),
    total,
    done: 0,
    resumed: false,
  });
}

function batch(events: PurgerEventEmitter, entry: string, done: number, total: number | null, elapsedMs: number, runId = "1"): void {
  events.emit("run:batch:done", {
    runId,
    entry,
    processed: 1000,
    done,
    total,
    batches: done / 1000,
    batchMs: 50,
    rate: (done / elapsedMs) * 1000,
    elapsedMs,
    batchSize: 1000,
  });
}

/** The last frame without colour codes (FORCE_COLOR may be set where the tests run). */
function frame(ui: { lastFrame(): string | undefined }): string {
  // eslint-disable-next-line no-control-regex
  return (ui.lastFrame() ?? "").replace(/\u001B\[[0-9;]*m/g, "");
}

afterEach(() => {
  cleanup();
});

describe("frames", () => {
  it("idle", async () => {
    const { store } = setup();
    const ui = render(<App store={store} columns={100} rows={30} />);
    await settle(store);
    expect(frame(ui)).toMatchInlineSnapshot(`
      " ONCE  purger once revoked-access-tokens · up 0s
      db postgres://purger:***@db-host:5432/auth  process db-host:4242  concurrency 1  cluster …

      › revoked-access-tokens retention  idle

      q stop (the run is interrupted) · p pause/resume · ↑↓ select · enter last runs
      logs → .purger/purger.log"
    `);
  });

  it("the header shows the concurrency the worker runs with once the database lowered it", async () => {
    const { store } = setup({ concurrency: 50 });
    const ui = render(<App store={store} columns={100} rows={30} />);
    store.setConcurrency(4);
    await settle(store);
    expect(frame(ui).split("\n")[1]).toBe("db postgres://purger:***@db-host:5432/auth  process db-host:4242  concurrency 4  cluster …");
  });

  it("running with a known total: bar, done/total, smoothed rate, elapsed, ETA", async () => {
    const { store, events, clock } = setup();
    const ui = render(<App store={store} columns={100} rows={30} />);
    start(events, "revoked-access-tokens", 1_000_000);
    for (let i = 1; i <= 40; i++) {
      clock.now += 100;
      batch(events, "revoked-access-tokens", i * 10_000, 1_000_000, i * 100);
    }
    await settle(store);
    expect(frame(ui)).toMatchInlineSnapshot(`
      " ONCE  purger once revoked-access-tokens · up 4s
      db postgres://purger:***@db-host:5432/auth  process db-host:4242  concurrency 1  cluster …

      › revoked-access-tokens retention  running
        ██████████████████████░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░   400,000/1,000,000    100k/s     4s     6s

      q stop (the run is interrupted) · p pause/resume · ↑↓ select · enter last runs
      logs → .purger/purger.log"
    `);
  });

  it("a long estimate: the state shows how far it has counted, until the run starts", async () => {
    const { store, events } = setup();
    const ui = render(<App store={store} columns={100} rows={30} />);
    events.emit("run:estimate:progress", { runId: "1", entry: "revoked-access-tokens", done: 12_000, total: null });
    await settle(store);
    expect(frame(ui).split("\n").slice(3, 5)).toEqual(["› revoked-access-tokens retention  estimating…", "  counted 12,000 so far"]);
    events.emit("run:estimate:progress", { runId: "1", entry: "revoked-access-tokens", done: 30_000, total: 50_000 });
    await settle(store);
    expect(frame(ui).split("\n")[4]).toBe("  counted 30,000 of 50,000 so far");
    start(events, "revoked-access-tokens", 50_000);
    await settle(store);
    expect(frame(ui).split("\n")[3]).toBe("› revoked-access-tokens retention  running");
  });

  it("running without a total: a spinner and a count, no ETA", async () => {
    const { store, events, clock } = setup();
    const ui = render(<App store={store} columns={100} rows={30} />);
    start(events, "revoked-access-tokens", null);
    clock.now += 2_000;
    batch(events, "revoked-access-tokens", 12_000, null, 2_000);
    await settle(store);
    expect(frame(ui)).toMatchInlineSnapshot(`
      " ONCE  purger once revoked-access-tokens · up 2s
      db postgres://purger:***@db-host:5432/auth  process db-host:4242  concurrency 1  cluster …

      › revoked-access-tokens retention  running
        ◰ no estimate                                                       12,000   6,000/s     2s      —

      q stop (the run is interrupted) · p pause/resume · ↑↓ select · enter last runs
      logs → .purger/purger.log"
    `);
  });

  it("failed: the state in red, the error on a line of its own, the run among the finished ones", async () => {
    const { store, events, clock } = setup();
    const ui = render(<App store={store} columns={100} rows={30} />);
    start(events, "revoked-access-tokens", 50_000);
    clock.now += 1_000;
    batch(events, "revoked-access-tokens", 5_000, 50_000, 1_000);
    clock.now += 500;
    events.emit("run:finish", {
      runId: "1",
      entry: "revoked-access-tokens",
      plugin: "@purger/plugin-retention",
      status: "failed",
      dryRun: false,
      processed: 5_000,
      batches: 5,
      durationMs: 1_500,
      error: 'canceling statement due to lock timeout on "oauth2_access_tokens"',
    });
    await settle(store);
    expect(frame(ui)).toMatchInlineSnapshot(`
      "✖ revoked-access-tokens failed: 5,000 processed in 1s (3,333/s) canceling statement due to lock tim…
       ONCE  purger once revoked-access-tokens · up 1s
      db postgres://purger:***@db-host:5432/auth  process db-host:4242  concurrency 1  cluster …

      › revoked-access-tokens retention  failed
        █████░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░        5,000/50,000   3,333/s     1s
        ✖ canceling statement due to lock timeout on "oauth2_access_tokens"

      q stop (the run is interrupted) · p pause/resume · ↑↓ select · enter last runs
      logs → .purger/purger.log"
    `);
  });

  it("paused: `p` asks, the engine confirms at the batch boundary, `p` again resumes", async () => {
    const { store, events, clock } = setup();
    const ui = render(<App store={store} columns={100} rows={30} />);
    start(events, "revoked-access-tokens", 100_000);
    clock.now += 1_000;
    batch(events, "revoked-access-tokens", 20_000, 100_000, 1_000);
    await settle(store);
    ui.stdin.write("p");
    await settle(store);
    expect(store.isPaused("revoked-access-tokens")).toBe(true);
    expect(frame(ui)).toContain("pausing…");
    events.emit("entry:pause", { entry: "revoked-access-tokens", paused: true });
    clock.now += 5_000;
    await settle(store);
    expect(frame(ui)).toMatchInlineSnapshot(`
      " ONCE  purger once revoked-access-tokens · up 6s
      db postgres://purger:***@db-host:5432/auth  process db-host:4242  concurrency 1  cluster …

      › revoked-access-tokens retention  paused
        ███████████░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░      20,000/100,000       0/s     6s      —

      q stop (the run is interrupted) · p pause/resume · ↑↓ select · enter last runs
      logs → .purger/purger.log"
    `);
    ui.stdin.write("p");
    await settle(store);
    expect(store.isPaused("revoked-access-tokens")).toBe(false);
    expect(frame(ui)).toContain("running");
  });

  it("the bin panel: depth per kind, oldest item, failed, handled here; a bin item on its entry's row", async () => {
    const status: ClusterStatus = {
      processes: [
        {
          id: "db-host:4242:abcd",
          host: "db-host",
          pid: 4242,
          concurrency: 4,
          startedAt: new Date(T0 - 60_000),
          heartbeatAt: new Date(T0 - 1_000),
        },
      ],
      entries: [],
      bin: [
        { kind: "blobs.prefix", pending: 1, failed: 0, oldestMs: 4_000 },
        { kind: "blobs.object", pending: 0, failed: 0, oldestMs: null },
        { kind: "certs.revoke", pending: 12, failed: 2, oldestMs: 95_000 },
      ],
    };
    const { store, events, clock } = setup({
      mode: "run",
      title: "run",
      processId: "db-host:4242:abcd",
      concurrency: 4,
      entries: [
        { id: "blobs", plugin: "@purger/plugin-blob", kinds: ["blobs.prefix", "blobs.object"] },
        { id: "certs", plugin: "@purger/plugin-certs", kinds: ["certs.revoke"] },
      ],
      pollCluster: async () => status,
    });
    const ui = render(<App store={store} columns={100} rows={30} />);
    store.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    events.emit("bin:item:start", { itemId: "17", kind: "blobs.prefix", entry: "blobs", attempt: 1 });
    events.emit("bin:item:done", { itemId: "16", kind: "certs.revoke", entry: "certs", processed: 1, durationMs: 40, finished: true });
    clock.now += 2_000;
    events.emit("bin:item:progress", { itemId: "17", kind: "blobs.prefix", entry: "blobs", done: 3_000, total: 10_000 });
    await settle(store);
    expect(frame(ui)).toMatchInlineSnapshot(`
      " RUN  purger run · up 2s
      db postgres://purger:***@db-host:5432/auth  process db-host:4242:abcd  concurrency 4
      cluster 1 process

        entry    plugin     state              progress                 done/total      rate   time    eta
      › blobs    blob       bin item           █████░░░░░░░░░░        3,000/10,000   1,500/s     2s     4s
        blobs.prefix #17
        certs    certs      idle

      bin                                pending   oldest   failed  handled
        blobs.object                            0        —        0        0
        blobs.prefix                            1       4s        0        0
        certs.revoke                           12    1m35s        2        1

      q quit (drain, then exit) · p pause/resume · ↑↓ select · enter last runs  logs → .purger/purger.log"
    `);
    store.stop();
  });

  it("80 columns: two lines per entry (name, plugin, state; then the figures), nothing wider than 80", async () => {
    const { store, events, clock } = setup({
      entries: [
        { id: "revoked-access-tokens", plugin: "@purger/plugin-retention", kinds: [] },
        { id: "stale-uploads", plugin: "@purger/plugin-blob", kinds: ["stale-uploads.upload"] },
      ],
    });
    const ui = render(<App store={store} columns={80} rows={24} />);
    start(events, "revoked-access-tokens", 1_000_000);
    start(events, "stale-uploads", null, "2");
    for (let i = 1; i <= 20; i++) {
      clock.now += 100;
      batch(events, "revoked-access-tokens", i * 10_000, 1_000_000, i * 100);
    }
    batch(events, "stale-uploads", 340, null, 2_000, "2");
    await settle(store);
    const text = frame(ui);
    expect(Math.max(...text.split("\n").map((line) => line.length))).toBeLessThanOrEqual(80);
    expect(text).toMatchInlineSnapshot(`
      " ONCE  purger once revoked-access-tokens · up 2s
      db postgres://purger:***@db-host:5432/auth  process db-host:4242  concurrency 1
      cluster …

      › revoked-access-tokens retention  running
        ███████░░░░░░░░░░░░░░░░░░░░░░░░░░░   200,000/1,000,000    100k/s     2s     8s
        stale-uploads         blob       running
        ◰ no estimate                                      340     170/s     2s      —

      bin · empty                        pending   oldest   failed  handled
        stale-uploads.upload                    0        —        0        0

      q stop (the run is interrupted) · p pause/resume · ↑↓ select · enter last runs
      logs → .purger/purger.log"
    `);
  });
});

describe("keys", () => {
  it("q and Ctrl-C quit gracefully (once), whatever the order", async () => {
    for (const key of ["q", "\u0003"]) {
      const { store, quits } = setup();
      const ui = render(<App store={store} columns={100} />);
      await settle(store);
      ui.stdin.write(key);
      ui.stdin.write(key);
      await settle(store);
      expect(quits).toHaveLength(1);
      expect(frame(ui)).toContain("stopping: the batch in flight commits or rolls back…");
      ui.unmount();
    }
  });

  it("↑/↓ select; enter opens the selected entry's last runs, esc closes them", async () => {
    const runs: RunRecord[] = [
      {
        id: "41",
        entry: "sessions",
        plugin: "@purger/plugin-retention",
        trigger: "schedule",
        status: "succeeded",
        dryRun: false,
        cutoff: new Date(T0 - 86_400_000),
        startedAt: new Date(T0 - 120_000),
        finishedAt: new Date(T0 - 117_000),
        processed: 12_345,
        batches: 13,
        slices: 1,
        total: 12_345,
        tables: null,
        checkpoint: null,
        processId: "db-host:1",
        error: null,
        guard: null,
        durationMs: 3_200,
      },
      {
        id: "40",
        entry: "sessions",
        plugin: "@purger/plugin-retention",
        trigger: "manual",
        status: "failed",
        dryRun: false,
        cutoff: new Date(T0 - 86_400_000),
        startedAt: new Date(T0 - 3_600_000),
        finishedAt: new Date(T0 - 3_599_000),
        processed: 0,
        batches: 0,
        slices: 1,
        total: null,
        tables: null,
        checkpoint: null,
        processId: "db-host:1",
        error: "permission denied for table sessions",
        guard: null,
        durationMs: 900,
      },
    ];
    const asked: string[] = [];
    const { store } = setup({
      entries: [
        { id: "tokens", plugin: "@purger/plugin-retention", kinds: [] },
        { id: "sessions", plugin: "@purger/plugin-retention", kinds: [] },
      ],
      loadRuns: async (entry) => {
        asked.push(entry);
        return runs;
      },
    });
    const ui = render(<App store={store} columns={100} rows={30} />);
    await settle(store);
    ui.stdin.write("\u001B[B");
    await settle(store);
    ui.stdin.write("\r");
    await settle(store);
    await settle(store);
    expect(asked).toEqual(["sessions"]);
    expect(frame(ui)).toMatchInlineSnapshot(`
      " ONCE  purger once revoked-access-tokens · up 0s
      db postgres://purger:***@db-host:5432/auth  process db-host:4242  concurrency 1  cluster …

        entry    plugin     state              progress                 done/total      rate   time    eta
        tokens   retention  idle
      › sessions retention  idle

      ╭──────────────────────────────────────────────────────────────────────────────────────────────────╮
      │ last runs of sessions · enter or esc closes                                                      │
      │ #41     succeeded    schedule      12,345      3s 2m00s ago                                      │
      │ #40     failed       manual             0      0s 1h00m ago permission denied for table sessions │
      ╰──────────────────────────────────────────────────────────────────────────────────────────────────╯

      q stop (the run is interrupted) · p pause/resume · ↑↓ select · enter last runs
      logs → .purger/purger.log"
    `);
    ui.stdin.write("\u001B");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await settle(store);
    expect(frame(ui)).not.toContain("last runs of");
  });
});

describe("the store", () => {
  it("publishes at most 4 snapshots a second however fast batches come", async () => {
    const events = new PurgerEventEmitter();
    const store = new TuiStore({
      mode: "once",
      title: "t",
      entries: [{ id: "e", plugin: "p", kinds: [] }],
      events,
      processId: "p",
      concurrency: 1,
    });
    let published = 0;
    store.subscribe(() => (published += 1));
    start(events, "e", 1_000_000);
    const started = performance.now();
    let done = 0;
    while (performance.now() - started < 1_000) {
      for (let i = 0; i < 200; i++) batch(events, "e", (done += 1000), 1_000_000_000, performance.now() - started);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const elapsed = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(done).toBeGreaterThan(10_000);
    expect(published).toBeGreaterThanOrEqual(2);
    // One a quarter of a second, plus the one still due when the loop ended.
    expect(published).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
    expect(store.getSnapshot().entries[0]!.done).toBe(done);
    store.stop();
  });

  it("counts runs of other processes from the cluster's status, not its own", async () => {
    const remoteRun = (id: string, processId: string): RunRecord => ({
      id,
      entry: "sessions",
      plugin: "@purger/plugin-retention",
      trigger: "schedule",
      status: "running",
      dryRun: false,
      cutoff: null,
      startedAt: new Date(T0 - 30_000),
      finishedAt: null,
      processed: 8_000,
      batches: 8,
      slices: 1,
      total: 20_000,
      tables: null,
      checkpoint: null,
      processId,
      error: null,
      guard: null,
      durationMs: null,
    });
    let status: ClusterStatus = {
      processes: [],
      entries: [{ entry: "sessions", last: null, running: remoteRun("7", "other-host:99:ffff"), failures: 0 }],
      bin: [],
    };
    const { store } = setup({
      mode: "run",
      entries: [{ id: "sessions", plugin: "@purger/plugin-retention", kinds: [] }],
      pollCluster: async () => status,
      pollMs: 20,
    });
    store.start();
    await new Promise((resolve) => setTimeout(resolve, 60));
    store.flush();
    expect(store.getSnapshot().remote).toEqual([
      { entry: "sessions", processId: "other-host:99:ffff", processed: 8_000, total: 20_000, startedAt: T0 - 30_000 },
    ]);
    expect(store.getSnapshot().entries[0]!.state).toEqual({ kind: "elsewhere", processId: "other-host:99:ffff" });
    status = { ...status, entries: [{ entry: "sessions", last: null, running: null, failures: 0 }] };
    await new Promise((resolve) => setTimeout(resolve, 60));
    store.flush();
    expect(store.getSnapshot().remote).toEqual([]);
    expect(store.getSnapshot().entries[0]!.state).toEqual({ kind: "idle" });
    store.stop();
  });
});
