/**
 * The terminal UI's state: engine events and the cluster's status (polled
 * from the database) folded into one immutable snapshot, published at most
 * every `frameMs` (4 times a second; keys at once; Ink itself draws at most
 * 10 frames a second) however fast batches go — the engine never waits for a
 * render, and a render never happens per batch.
 *
 * The store also owns what the keys change (selection, pauses, the runs
 * panel, quitting), so the key handling is tested without a terminal.
 */
import { hostname } from "node:os";
import type { BinDepth, ClusterStatus, PurgerEventEmitter, RunRecord, RunStatus } from "@purger/core/host";
import { smooth, type RateMark } from "./rate.js";
import {
  sameEntry,
  sameList,
  type EntryState,
  type EntryView,
  type FinishedRun,
  type RemoteRun,
  type RunsPanel,
  type TuiMode,
  type TuiSnapshot,
} from "./snapshot.js";

export type { BinKindView, EntryState, EntryView, FinishedRun, RemoteRun, RunsPanel, TuiMode, TuiSnapshot } from "./snapshot.js";
import { shortPluginName } from "./format.js";

export interface TuiEntry {
  id: string;
  plugin: string;
  /** Bin kinds of the entry (`<id>.<handler>`). */
  kinds: string[];
}

export interface TuiStoreOptions {
  mode: TuiMode;
  title: string;
  entries: TuiEntry[];
  events: PurgerEventEmitter;
  processId: string;
  concurrency: number;
  database?: string;
  logFile?: string | null;
  /** Reads the cluster's status (runs elsewhere, bin depth, processes); polled every `pollMs`. */
  pollCluster?: () => Promise<ClusterStatus>;
  /** The last runs of an entry, for the runs panel (`enter`). */
  loadRuns?: (entry: string) => Promise<RunRecord[]>;
  /** When an entry with a schedule runs next (after a run finishes). */
  nextRunAt?: (entry: string) => Date | null;
  /** Called once when the user quits (`q`, Ctrl-C). */
  onQuit?: () => void;
  /** Minimum time between two snapshots published for engine events (keys publish at once). @defaultValue 250 */
  frameMs?: number;
  /** @defaultValue 1000 */
  pollMs?: number;
  /** Processes whose heartbeat is older count as dead. @defaultValue 30000 */
  liveAfterMs?: number;
  /** The clock (tests fix it). */
  now?: () => number;
}

/** Bin items get a line of their own among finished runs when they are big (a prefix) or slow. */
const BIN_LINE_MIN_ITEMS = 100;
const BIN_LINE_MIN_MS = 10_000;

interface EntryModel extends EntryView {
  mark: RateMark | null;
  runId: string | null;
  userPaused: boolean;
}

interface BinItemModel {
  kind: string;
  entry: string;
  itemId: string;
  done: number;
  total: number | null;
  startedAt: number;
  rate: number;
  mark: RateMark | null;
}

export class TuiStore {
  readonly #options: TuiStoreOptions;
  readonly #now: () => number;
  readonly #frameMs: number;
  readonly #entries: Map<string, EntryModel>;
  readonly #order: string[];
  readonly #binItems = new Map<string, BinItemModel>();
  readonly #binCounts = new Map<string, { handled: number; failed: number }>();
  readonly #ownRuns = new Set<string>();
  readonly #listeners = new Set<() => void>();
  readonly #off: Array<() => void> = [];
  readonly #startedAt: number;
  #finished: FinishedRun[] = [];
  #binDepth: BinDepth[] = [];
  #remote: RemoteRun[] = [];
  #processes: number | null = null;
  #database: string;
  #selected = 0;
  #runsPanel: RunsPanel | null = null;
  #quitting = false;
  #ended = false;
  #notice: string | null = null;
  #stage: string | null = null;
  #snapshot: TuiSnapshot;
  #frameTimer: NodeJS.Timeout | null = null;
  #tickTimer: NodeJS.Timeout | null = null;
  #pollTimer: NodeJS.Timeout | null = null;
  #lastPublish = 0;
  #stopped = false;
  #started = false;
  #finishedSeq = 0;

  constructor(options: TuiStoreOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#frameMs = options.frameMs ?? 250;
    this.#startedAt = this.#now();
    this.#database = options.database ?? "connecting…";
    this.#order = options.entries.map((e) => e.id);
    this.#entries = new Map(options.entries.map((e) => [e.id, newEntry(e)]));
    for (const [id, entry] of this.#entries) {
      const at = options.nextRunAt?.(id);
      if (at) entry.state = { kind: "scheduled", at: at.getTime() };
    }
    this.#subscribeEvents(options.events);
    this.#snapshot = this.#build();
  }

  /** Start the clock (one snapshot a second at least, for uptimes and countdowns) and the cluster poll. */
  start(): void {
    this.#started = true;
    this.#tickTimer = setInterval(() => this.#changed(), 1_000);
    this.#tickTimer.unref();
    if (this.#options.pollCluster) void this.#poll();
  }

  /** Where the cluster's status and the run history come from, once the database is connected. */
  setPoll(pollCluster: () => Promise<ClusterStatus>, loadRuns?: (entry: string) => Promise<RunRecord[]>): void {
    const first = !this.#options.pollCluster;
    this.#options.pollCluster = pollCluster;
    if (loadRuns) this.#options.loadRuns = loadRuns;
    if (first && this.#started && !this.#stopped) void this.#poll();
  }

  /** No more cluster polls (the database is about to close). */
  stopPolling(): void {
    this.#options.pollCluster = undefined;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
  }

  stop(): void {
    this.#stopped = true;
    this.#ended = true;
    for (const entry of this.#entries.values()) {
      const kind = entry.state.kind;
      if (kind !== "running" && kind !== "starting" && kind !== "waiting") continue;
      // A run cut short with nothing done yet (a service's periodic run) leaves the last real one on show.
      entry.state = entry.done === 0 && entry.last !== null ? { kind: "idle" } : { kind: "suspended" };
    }
    for (const off of this.#off) off();
    for (const timer of [this.#frameTimer, this.#pollTimer]) if (timer) clearTimeout(timer);
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    this.#publish();
  }

  // --- for React (useSyncExternalStore) ---

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  getSnapshot = (): TuiSnapshot => this.#snapshot;

  /** Publish now, whatever the throttle (tests, and the last frame before unmounting). */
  flush(): void {
    this.#publish();
  }

  // --- for the engine ---

  /** The `isPaused` of runEntry / startWorker. */
  isPaused = (entry: string): boolean => this.#entries.get(entry)?.userPaused ?? false;

  setDatabase(label: string): void {
    this.#database = label;
    this.#changed();
  }

  setStage(text: string | null): void {
    this.#stage = text;
    this.#changed();
  }

  /** The entry is about to run (shown until its run starts). */
  setStarting(entry: string): void {
    const model = this.#entries.get(entry);
    if (!model) return;
    model.state = { kind: "starting" };
    this.#changed();
  }

  setProcessId(processId: string): void {
    this.#options.processId = processId;
    this.#changed();
  }

  /** The concurrency the worker runs with (lower than asked when the database has no room for more). */
  setConcurrency(concurrency: number): void {
    this.#options.concurrency = concurrency;
    this.#changed();
  }

  // --- for the keys ---

  select(delta: number): void {
    const count = this.#order.length;
    if (count === 0) return;
    this.#selected = Math.min(count - 1, Math.max(0, this.#selected + delta));
    if (this.#runsPanel) this.#openRuns();
    this.#publish();
  }

  togglePause(): void {
    const entry = this.#selectedEntry();
    if (!entry) return;
    entry.userPaused = !entry.userPaused;
    if (entry.userPaused) entry.pause = entry.state.kind === "running" ? "requested" : "yes";
    else entry.pause = "no";
    this.#publish();
  }

  toggleRuns(): void {
    if (this.#runsPanel) {
      this.#runsPanel = null;
      this.#publish();
      return;
    }
    this.#openRuns();
  }

  closePanel(): void {
    if (!this.#runsPanel) return;
    this.#runsPanel = null;
    this.#publish();
  }

  quit(): void {
    if (this.#quitting) return;
    this.#quitting = true;
    this.#publish();
    this.#options.onQuit?.();
  }

  get quitting(): boolean {
    return this.#quitting;
  }

  // --- internals ---

  #selectedEntry(): EntryModel | undefined {
    const id = this.#order[this.#selected];
    return id === undefined ? undefined : this.#entries.get(id);
  }

  #openRuns(): void {
    const entry = this.#selectedEntry();
    const load = this.#options.loadRuns;
    if (!entry) return;
    const panel: RunsPanel = { entry: entry.id, runs: null, error: load ? null : "run history is not available here" };
    this.#runsPanel = panel;
    this.#changed();
    if (!load) return;
    load(entry.id).then(
      (runs) => {
        if (this.#runsPanel?.entry !== entry.id) return;
        this.#runsPanel = { ...panel, runs };
        this.#changed();
      },
      (error: unknown) => {
        if (this.#runsPanel?.entry !== entry.id) return;
        this.#runsPanel = { ...panel, error: messageOf(error) };
        this.#changed();
      },
    );
  }

  #subscribeEvents(events: PurgerEventEmitter): void {
    const on = this.#off;
    on.push(
      events.on("run:start", (e) => {
        const entry = this.#entries.get(e.entry);
        if (!entry) return;
        if (e.runId) this.#ownRuns.add(e.runId);
        const now = this.#now();
        Object.assign(entry, {
          state: { kind: "running" },
          runId: e.runId,
          done: e.done,
          total: e.total,
          rate: 0,
          startedAt: now,
          mark: null,
          durationMs: null,
          lastError: null,
        });
        if (entry.userPaused) entry.pause = "requested";
        this.#changed();
      }),
      events.on("run:batch:done", (e) => {
        const entry = this.#entries.get(e.entry);
        if (!entry) return;
        const now = this.#now();
        if (entry.state.kind !== "running") entry.state = { kind: "running" };
        [entry.rate, entry.mark] = smooth(entry.rate, entry.mark, now, e.done, e.rate);
        entry.done = e.done;
        entry.total = e.total;
        entry.startedAt = now - e.elapsedMs;
        this.#changed();
      }),
      events.on("run:finish", (e) => {
        const entry = this.#entries.get(e.entry);
        if (!entry) return;
        entry.done = e.processed;
        entry.durationMs = e.durationMs;
        // In a service, a run that found nothing leaves the last run that did something on show.
        if (e.processed > 0 || e.status !== "succeeded" || this.#options.mode === "once" || entry.last === null) {
          entry.last = { processed: e.processed, durationMs: e.durationMs };
        }
        entry.lastError = e.error && e.status !== "interrupted" ? e.error : (e.guard ?? null);
        entry.runId = null;
        entry.pause = entry.userPaused ? "yes" : "no";
        entry.state = this.#stateAfterRun(e.entry, e.status);
        // A run that found nothing to do (every few seconds, in a service) gets no line of its own.
        if (e.status !== "succeeded" || e.processed > 0 || this.#options.mode === "once") {
          this.#finished = [
            ...this.#finished,
            {
              key: `run-${++this.#finishedSeq}`,
              entry: e.entry,
              what: "run",
              status: e.status,
              processed: e.processed,
              durationMs: e.durationMs,
              dryRun: e.dryRun,
              detail: e.guard ?? (e.status === "interrupted" ? null : (e.error ?? null)),
            },
          ];
        }
        this.#changed();
      }),
      events.on("run:estimate:progress", (e) => {
        const entry = this.#entries.get(e.entry);
        if (!entry) return;
        entry.state = { kind: "starting", estimate: { done: e.done, total: e.total } };
        this.#changed();
      }),
      events.on("run:lock:wait", (e) => {
        const entry = this.#entries.get(e.entry);
        if (!entry) return;
        entry.state = { kind: "waiting", holder: e.holder };
        this.#changed();
      }),
      events.on("run:retry", (e) => {
        const entry = this.#entries.get(e.entry);
        if (!entry) return;
        entry.lastError = e.error;
        entry.state = e.nextAt
          ? { kind: "retrying", at: e.nextAt.getTime(), attempt: e.attempt, maxAttempts: e.maxAttempts }
          : { kind: "finished", status: "failed" };
        this.#changed();
      }),
      events.on("entry:schedule", (e) => {
        const entry = this.#entries.get(e.entry);
        if (!entry) return;
        if (entry.state.kind === "idle" || entry.state.kind === "scheduled" || entry.state.kind === "finished") {
          entry.state = { kind: "scheduled", at: e.at.getTime() };
        }
        this.#changed();
      }),
      events.on("entry:pause", (e) => {
        const entry = this.#entries.get(e.entry);
        if (!entry) return;
        entry.pause = e.paused ? "yes" : entry.userPaused ? "requested" : "no";
        // Measure the rate afresh after a pause.
        if (!e.paused) entry.mark = { at: this.#now(), done: entry.done };
        this.#changed();
      }),
      events.on("bin:item:start", (e) => {
        const now = this.#now();
        this.#binItems.set(e.itemId, {
          kind: e.kind,
          entry: e.entry,
          itemId: e.itemId,
          done: 0,
          total: null,
          startedAt: now,
          rate: 0,
          mark: null,
        });
        this.#changed();
      }),
      events.on("bin:item:progress", (e) => {
        const item = this.#binItems.get(e.itemId);
        if (!item) return;
        const now = this.#now();
        const seconds = (now - item.startedAt) / 1000;
        [item.rate, item.mark] = smooth(item.rate, item.mark, now, e.done, seconds > 0 ? e.done / seconds : 0);
        item.done = e.done;
        item.total = e.total;
        this.#changed();
      }),
      events.on("bin:item:done", (e) => {
        this.#binItems.delete(e.itemId);
        this.#count(e.kind).handled += 1;
        if (e.finished && (e.processed >= BIN_LINE_MIN_ITEMS || e.durationMs >= BIN_LINE_MIN_MS)) {
          this.#finished = [
            ...this.#finished,
            {
              key: `bin-${++this.#finishedSeq}`,
              entry: e.entry,
              what: e.kind,
              status: "succeeded",
              processed: e.processed,
              durationMs: e.durationMs,
              dryRun: false,
              detail: null,
            },
          ];
        }
        this.#changed();
      }),
      events.on("bin:item:fail", (e) => {
        this.#binItems.delete(e.itemId);
        if (e.final) this.#count(e.kind).failed += 1;
        const entry = this.#entries.get(e.entry);
        if (entry) entry.lastError = `${e.kind} #${e.itemId}: ${e.error}`;
        this.#changed();
      }),
      events.on("engine:error", (e) => {
        this.#notice = `${e.where}: ${e.error.message}`;
        this.#changed();
      }),
    );
  }

  #count(kind: string): { handled: number; failed: number } {
    let counts = this.#binCounts.get(kind);
    if (!counts) {
      counts = { handled: 0, failed: 0 };
      this.#binCounts.set(kind, counts);
    }
    return counts;
  }

  #stateAfterRun(id: string, status: Exclude<RunStatus, "running">): EntryState {
    if (this.#options.mode === "run" && status !== "failed") {
      const at = this.#options.nextRunAt?.(id);
      if (at) return { kind: "scheduled", at: at.getTime() };
      if (status === "succeeded") return { kind: "idle" };
    }
    return { kind: "finished", status };
  }

  async #poll(): Promise<void> {
    const poll = this.#options.pollCluster;
    if (!poll || this.#stopped) return;
    // A poll in flight when polling stops is dropped.
    try {
      const status = await poll();
      if (!this.#options.pollCluster) return;
      this.#applyCluster(status);
      if (this.#notice?.startsWith("cluster status")) this.#notice = null;
    } catch (error) {
      this.#notice = `cluster status unavailable: ${messageOf(error)}`;
    }
    this.#changed();
    if (this.#stopped) return;
    this.#pollTimer = setTimeout(() => void this.#poll(), this.#options.pollMs ?? 1_000);
    this.#pollTimer.unref();
  }

  #applyCluster(status: ClusterStatus): void {
    const now = this.#now();
    const liveAfter = this.#options.liveAfterMs ?? 30_000;
    const live = status.processes.filter((p) => now - p.heartbeatAt.getTime() < liveAfter);
    // A worker (`run`, `demo`) beats in purger.processes; `once` does not, so it counts itself.
    this.#processes = live.length + (this.#options.mode === "once" ? 1 : 0);
    this.#binDepth = status.bin;
    this.#remote = [];
    for (const e of status.entries) {
      const run = e.running;
      if (!run || this.#ownRuns.has(run.id) || isThisProcess(run.processId, this.#options.processId)) continue;
      this.#remote.push({
        entry: e.entry,
        processId: run.processId ?? "?",
        processed: run.processed,
        total: run.total,
        startedAt: run.startedAt.getTime(),
      });
      const entry = this.#entries.get(e.entry);
      if (
        entry &&
        (entry.state.kind === "idle" ||
          entry.state.kind === "scheduled" ||
          entry.state.kind === "elsewhere" ||
          entry.state.kind === "finished")
      ) {
        entry.state = { kind: "elsewhere", processId: run.processId ?? "?" };
      }
    }
    for (const entry of this.#entries.values()) {
      if (entry.state.kind === "elsewhere" && !this.#remote.some((r) => r.entry === entry.id)) {
        const at = this.#options.nextRunAt?.(entry.id);
        entry.state = at ? { kind: "scheduled", at: at.getTime() } : { kind: "idle" };
      }
    }
  }

  #changed(): void {
    if (this.#frameTimer) return;
    const wait = Math.max(0, this.#lastPublish + this.#frameMs - this.#now());
    this.#frameTimer = setTimeout(() => {
      this.#frameTimer = null;
      this.#publish();
    }, wait);
    this.#frameTimer.unref();
  }

  #publish(): void {
    if (this.#frameTimer) {
      clearTimeout(this.#frameTimer);
      this.#frameTimer = null;
    }
    this.#lastPublish = this.#now();
    this.#snapshot = this.#build();
    for (const listener of this.#listeners) listener();
  }

  /**
   * The next snapshot. Entry views and the bin list that did not change keep
   * their identity, so memoised components skip them.
   */
  #build(): TuiSnapshot {
    const previous = this.#snapshot as TuiSnapshot | undefined;
    const kinds = new Set(this.#options.entries.flatMap((e) => e.kinds));
    const depth = new Map(this.#binDepth.map((d) => [d.kind, d]));
    for (const kind of this.#binCounts.keys()) kinds.add(kind);
    for (const d of this.#binDepth) if (d.pending > 0 || d.failed > 0) kinds.add(d.kind);
    const bin = [...kinds].sort().map((kind) => {
      const d = depth.get(kind) ?? { kind, pending: 0, failed: 0, oldestMs: null };
      const counts = this.#binCounts.get(kind) ?? { handled: 0, failed: 0 };
      return { ...d, handled: counts.handled, failedHere: counts.failed };
    });
    const entries = this.#order.map((id, index) => {
      const { mark: _m, runId: _r, userPaused: _u, ...view } = this.#entries.get(id)!;
      const items = [...this.#binItems.values()].filter((item) => item.entry === id);
      const first = items[0];
      const next: EntryView = {
        ...view,
        binItem: first
          ? {
              kind: first.kind,
              itemId: first.itemId,
              done: first.done,
              total: first.total,
              startedAt: first.startedAt,
              rate: first.rate,
              active: items.length,
            }
          : null,
      };
      const before = previous?.entries[index];
      return before && sameEntry(before, next) ? before : next;
    });
    return {
      mode: this.#options.mode,
      title: this.#options.title,
      database: this.#database,
      processId: this.#options.processId,
      startedAt: this.#startedAt,
      now: this.#now(),
      concurrency: this.#options.concurrency,
      processes: this.#processes,
      entries,
      bin: previous && sameList(previous.bin, bin) ? previous.bin : bin,
      remote: this.#remote,
      finished: this.#finished,
      selected: this.#selected,
      runsPanel: this.#runsPanel,
      quitting: this.#quitting,
      ended: this.#ended,
      logFile: this.#options.logFile ?? null,
      notice: this.#notice,
      stage: this.#stage,
    };
  }
}

function newEntry(e: TuiEntry): EntryModel {
  return {
    id: e.id,
    plugin: shortPluginName(e.plugin),
    state: { kind: "idle" },
    pause: "no",
    done: 0,
    total: null,
    rate: 0,
    startedAt: null,
    durationMs: null,
    last: null,
    lastError: null,
    binItem: null,
    mark: null,
    runId: null,
    userPaused: false,
  };
}

function isThisProcess(runProcessId: string | null, ownProcessId: string): boolean {
  if (runProcessId === null) return false;
  if (runProcessId === ownProcessId) return true;
  // `once` records `host:pid`, the worker `host:pid:uuid`: both are this process.
  const self = `${hostname()}:${process.pid}`;
  return runProcessId === self || runProcessId.startsWith(`${self}:`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
