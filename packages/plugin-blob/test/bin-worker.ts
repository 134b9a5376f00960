/**
 * A bin worker for one blob entry, with the steps `runBin` chains kept apart
 * so a test can act between them (set a checkpoint, hold a lock) — the same
 * public API `purger run` uses.
 */
import {
  binKinds,
  enqueue,
  migrate,
  PurgerEventEmitter,
  silentLogger,
  startWorker,
  type AnyPlugin,
  type PurgerConfig,
  type PurgerWorker,
} from "@purger/core/host";
import { testEntry, type BinItem, type TestEntryOptions } from "@purger/core/testing";

export interface BinWorker {
  events: PurgerEventEmitter;
  enqueue(handler: string, payload: unknown): Promise<string>;
  start(): Promise<void>;
  /** Wait until these items are no longer pending; returns their rows. */
  settle(ids: string[], waitMs?: number): Promise<BinItem[]>;
  stop(): Promise<void>;
}

export async function binWorker(
  plugin: AnyPlugin,
  options: TestEntryOptions & { concurrency?: number; maxAttempts?: number },
): Promise<BinWorker> {
  const entry = testEntry(plugin, options);
  const kinds = binKinds([entry]);
  await migrate(options.pool, {
    workerSchema: "purger_worker",
    kinds: kinds.map((k) => ({ kind: k.kind, entry: entry.id, handler: k.handlerName })),
  });
  const events = options.events ?? new PurgerEventEmitter();
  const config: PurgerConfig = {
    file: null,
    dir: process.cwd(),
    database: { url: null },
    worker: { concurrency: options.concurrency ?? 2, shutdownTimeoutMs: 5_000, schema: "purger_worker" },
    runs: { keepMs: 30 * 86_400_000 },
    timezone: "UTC",
    http: null,
    entries: [entry],
  };
  let worker: PurgerWorker | null = null;
  return {
    events,
    async enqueue(handler, payload) {
      const id = await enqueue(options.pool, `${entry.id}.${handler}`, payload, kinds);
      if (options.maxAttempts !== undefined)
        await options.pool.query("UPDATE purger.bin SET max_attempts = $2 WHERE id = $1", [id, options.maxAttempts]);
      return id;
    },
    async start() {
      worker = await startWorker({ config, pool: options.pool, log: options.log ?? silentLogger, events });
    },
    async settle(ids, waitMs = 60_000) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const { rows } = await options.pool.query<BinItem>(
          `SELECT id::text, kind, payload, status, attempts, max_attempts AS "maxAttempts", last_error AS "lastError", checkpoint, processed,
                  created_at AS "createdAt", finished_at AS "finishedAt"
             FROM purger.bin WHERE id = ANY($1::bigint[]) ORDER BY id`,
          [ids],
        );
        if (rows.every((r) => r.status !== "pending")) return rows;
        if (Date.now() > deadline)
          throw new Error(`bin items still pending after ${waitMs} ms: ${JSON.stringify(rows.filter((r) => r.status === "pending"))}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      await worker?.stop();
      worker = null;
    },
  };
}

/** A logger that keeps every line (with its bindings) for assertions. */
export interface Line {
  level: "debug" | "info" | "warn" | "error";
  msg: string | undefined;
  [key: string]: unknown;
}

export function captureLogger(lines: Line[] = [], bindings: Record<string, unknown> = {}) {
  const write = (level: Line["level"]) => (obj: object, msg?: string) => lines.push({ ...bindings, ...obj, level, msg });
  const logger = {
    lines,
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: (more: Record<string, unknown>) => captureLogger(lines, { ...bindings, ...more }),
  };
  return logger;
}
