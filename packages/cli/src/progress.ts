/**
 * Progress without a UI: the same facts as the TUI (done, total, rate, ETA)
 * as pino lines on stderr, every few seconds per running entry, plus one line
 * per run start and finish.
 */
import type { Logger, PurgerEventEmitter } from "@purger/core/host";

interface Running {
  entry: string;
  done: number;
  total: number | null;
  rate: number;
  startedAt: number;
  batches: number;
  reported: number;
}

export function reportProgress(events: PurgerEventEmitter, log: Logger, intervalMs = 2_000): () => void {
  const running = new Map<string, Running>();
  const off = [
    events.on("run:start", (e) => {
      running.set(e.entry, { entry: e.entry, done: e.done, total: e.total, rate: 0, startedAt: Date.now(), batches: 0, reported: -1 });
    }),
    events.on("run:batch:done", (e) => {
      const r = running.get(e.entry);
      if (!r) return;
      r.done = e.done;
      r.total = e.total;
      r.rate = e.rate;
      r.batches = e.batches;
    }),
    events.on("run:finish", (e) => {
      running.delete(e.entry);
    }),
    events.on("bin:item:progress", (e) => {
      const key = `${e.kind}#${e.itemId}`;
      const r = running.get(key) ?? { entry: key, done: 0, total: null, rate: 0, startedAt: Date.now(), batches: 0, reported: -1 };
      r.done = e.done;
      r.total = e.total;
      const seconds = (Date.now() - r.startedAt) / 1000;
      r.rate = seconds > 0 ? e.done / seconds : 0;
      running.set(key, r);
    }),
    events.on("bin:item:done", (e) => {
      running.delete(`${e.kind}#${e.itemId}`);
    }),
  ];
  const timer = setInterval(() => {
    for (const r of running.values()) {
      if (r.done === r.reported) continue;
      r.reported = r.done;
      const left = r.total === null ? null : Math.max(0, r.total - r.done);
      log.info(
        {
          event: "run:progress",
          entry: r.entry,
          done: r.done,
          total: r.total,
          rate: Math.round(r.rate),
          elapsedMs: Date.now() - r.startedAt,
          etaMs: left !== null && r.rate > 0 ? Math.round((left / r.rate) * 1000) : null,
        },
        "progress",
      );
    }
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    for (const o of off) o();
  };
}
