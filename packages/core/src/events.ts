/**
 * Typed events of the engine (`scope:noun:verb`), for the CLI's logs and the TUI.
 */
import { EventEmitter } from "node:events";

export type RunTrigger = "schedule" | "manual" | "start" | "after" | "continue" | "retry";
/**
 * `superseded`: the entry's config changed while the run was unfinished, so a new run replaced it;
 * `cancelled`: abandoned by an operator (`purger runs cancel`).
 */
export type RunStatus = "running" | "succeeded" | "failed" | "guarded" | "interrupted" | "superseded" | "cancelled";

export interface RunStartEvent {
  runId: string;
  entry: string;
  plugin: string;
  trigger: RunTrigger;
  dryRun: boolean;
  cutoff: Date;
  /** Items left at the start (plugin estimate), null when unknown. */
  total: number | null;
  /** Items already done by earlier slices of this run. */
  done: number;
  /** True when this slice continues an earlier one of the run (in this process, another, or a killed one). */
  resumed: boolean;
  /** The unfinished run this one replaced because the entry's config changed, and what changed. */
  superseded?: { runId: string; reason: string };
}

export interface BatchDoneEvent {
  runId: string;
  entry: string;
  /** Items of this batch. */
  processed: number;
  /** Items of the run so far. */
  done: number;
  total: number | null;
  batches: number;
  batchMs: number;
  /** Items per second over the run so far. */
  rate: number;
  elapsedMs: number;
  batchSize: number;
}

export interface RunFinishEvent {
  runId: string;
  entry: string;
  plugin: string;
  status: Exclude<RunStatus, "running">;
  dryRun: boolean;
  processed: number;
  batches: number;
  durationMs: number;
  tables?: Record<string, number>;
  error?: string;
  guard?: string;
  sample?: string[];
}

export interface PurgerEvents {
  /**
   * A slice of a run starts working, after the guard and the estimate: once
   * per slice, whether the next slice runs in another worker or at once in
   * the same call (`once`); `resumed` is true from the second slice on. A run
   * that ends before its first batch (guarded, or a failing guard count or
   * estimate) has only a `run:finish`.
   */
  "run:start": RunStartEvent;
  /** A long `estimate` reports how far it has counted (`ctx.progress` in the estimate's context). */
  "run:estimate:progress": { runId: string | null; entry: string; done: number; total: number | null };
  /** Waiting for another process that holds the entry's lock. */
  "run:lock:wait": { entry: string; holder: string | null };
  "run:batch:done": BatchDoneEvent;
  /** A slice stopped at its timeout; the run continues in the next slice. */
  "run:slice:end": { runId: string; entry: string; done: number };
  "run:finish": RunFinishEvent;
  /** A run failed and will be retried. */
  "run:retry": { entry: string; attempt: number; maxAttempts: number; error: string; nextAt: Date | null };
  /** The next scheduled run of an entry. */
  "entry:schedule": { entry: string; at: Date };
  "entry:pause": { entry: string; paused: boolean };
  "bin:item:start": { itemId: string; kind: string; entry: string; attempt: number };
  "bin:item:progress": { itemId: string; kind: string; entry: string; done: number; total: number | null };
  "bin:item:done": { itemId: string; kind: string; entry: string; processed: number; durationMs: number; finished: boolean };
  "bin:item:fail": { itemId: string; kind: string; entry: string; attempt: number; final: boolean; error: string };
  /** An error that did not belong to a run (worker, heartbeat, listener). */
  "engine:error": { error: Error; where: string };
}

export type PurgerEventName = keyof PurgerEvents;

/** A typed EventEmitter. */
export class PurgerEventEmitter {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(100);
  }

  on<K extends PurgerEventName>(name: K, listener: (event: PurgerEvents[K]) => void): () => void {
    this.#emitter.on(name, listener);
    return () => this.#emitter.off(name, listener);
  }

  emit<K extends PurgerEventName>(name: K, event: PurgerEvents[K]): void {
    this.#emitter.emit(name, event);
  }
}
