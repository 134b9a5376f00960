/**
 * What the demo did, per entry, from the engine's events: items processed by
 * runs and by bin items, and the time from the entry's first start to its
 * last piece of work that processed something (the every-5-seconds runs that
 * find nothing to do do not stretch it).
 */
import type { PurgerEventEmitter } from "@purger/core/host";
import { shortPluginName } from "../ui/format.js";

export interface DemoEntryResult {
  id: string;
  plugin: string;
  processed: number;
  durationMs: number;
  /** Items per second over `durationMs`. */
  rate: number;
}

interface EntryStats {
  id: string;
  plugin: string;
  processed: number;
  firstStart: number | null;
  lastWork: number | null;
  finishedRuns: number;
  failed: string | null;
}

export class DemoStats {
  readonly #entries: Map<string, EntryStats>;
  readonly #off: Array<() => void>;
  #binHandled = 0;
  #binFailed = 0;

  constructor(events: PurgerEventEmitter, entries: Array<{ id: string; plugin: string }>) {
    this.#entries = new Map(
      entries.map((e) => [
        e.id,
        { id: e.id, plugin: e.plugin, processed: 0, firstStart: null, lastWork: null, finishedRuns: 0, failed: null },
      ]),
    );
    const started = (id: string) => {
      const e = this.#entries.get(id);
      if (e && e.firstStart === null) e.firstStart = Date.now();
    };
    const worked = (id: string, processed: number) => {
      const e = this.#entries.get(id);
      if (!e) return;
      e.processed += processed;
      if (processed > 0) e.lastWork = Date.now();
    };
    this.#off = [
      events.on("run:start", (e) => started(e.entry)),
      events.on("run:finish", (e) => {
        worked(e.entry, e.dryRun ? 0 : e.processed);
        const stats = this.#entries.get(e.entry);
        if (stats) {
          stats.finishedRuns += 1;
          stats.failed = e.status === "failed" || e.status === "guarded" ? (e.error ?? e.guard ?? e.status) : null;
        }
      }),
      events.on("bin:item:start", (e) => started(e.entry)),
      events.on("bin:item:done", (e) => {
        this.#binHandled += 1;
        worked(e.entry, e.processed);
      }),
      events.on("bin:item:fail", (e) => {
        if (e.final) this.#binFailed += 1;
      }),
    ];
  }

  /**
   * Every entry with a sweep finished a run. (Runs in flight do not matter: with
   * every-few-seconds schedules one nearly always is; what is left is asked of
   * the plugins' estimates.)
   */
  get everyEntryRan(): boolean {
    return [...this.#entries.values()].every((e) => e.finishedRuns > 0);
  }

  /** Entries whose last run failed (or was guarded), with the reason. */
  get failures(): Array<{ id: string; error: string }> {
    return [...this.#entries.values()].filter((e) => e.failed !== null).map((e) => ({ id: e.id, error: e.failed! }));
  }

  get binHandled(): number {
    return this.#binHandled;
  }

  get binFailedHere(): number {
    return this.#binFailed;
  }

  /** Mark an entry with no sweep (bin handlers only) as having run. */
  markRan(id: string): void {
    const e = this.#entries.get(id);
    if (e) e.finishedRuns = Math.max(1, e.finishedRuns);
  }

  results(): DemoEntryResult[] {
    return [...this.#entries.values()].map((e) => {
      const durationMs = e.firstStart !== null && e.lastWork !== null ? Math.max(1, e.lastWork - e.firstStart) : 0;
      return {
        id: e.id,
        plugin: shortPluginName(e.plugin),
        processed: e.processed,
        durationMs,
        rate: durationMs > 0 ? Math.round((e.processed / durationMs) * 1000) : 0,
      };
    });
  }

  stop(): void {
    for (const off of this.#off) off();
  }
}
