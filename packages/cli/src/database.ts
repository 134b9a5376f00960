/**
 * Connecting a command to its database: `database.url`, or the embedded
 * PostgreSQL under `.purger/` when the key is absent; migrations and the
 * config's bin kinds registered in the same step (so `purger.enqueue` knows them before any worker starts).
 */
import { join } from "node:path";
import type pg from "pg";
import {
  binKinds,
  connectionBudget,
  createPool,
  migrate,
  planWorkerConnections,
  redactSecretsIn,
  redactUrl,
  startEmbeddedPostgres,
  workerConnections,
  type Logger,
  type PurgerConfig,
} from "@purger/core/host";

export interface Database {
  pool: pg.Pool;
  url: string;
  /** "embedded PostgreSQL (<dir>)" or the URL through `redactUrl`: the only form of it that is shown or logged. */
  label: string;
  /** The worker concurrency that fits the database (the one asked for, or lower). */
  concurrency: number;
  close(): Promise<void>;
}

export async function connectDatabase(
  config: PurgerConfig,
  options: {
    log: Logger;
    cwd?: string;
    embeddedDir?: string;
    poolSize?: number;
    /** A worker will run with this concurrency: it and the pool are fitted to the database's room (see README, "Connections"). */
    concurrency?: number;
  },
): Promise<Database> {
  let url = config.database.url;
  let stopEmbedded: (() => Promise<void>) | null = null;
  let label: string;
  if (url === null) {
    const dir = options.embeddedDir ?? join(options.cwd ?? process.cwd(), ".purger", "pg");
    const embedded = await startEmbeddedPostgres({ dir, log: options.log });
    url = embedded.url;
    stopEmbedded = embedded.stop;
    label = `embedded PostgreSQL (${dir})`;
  } else {
    label = redactUrl(url);
  }
  let concurrency = options.concurrency ?? config.worker.concurrency;
  let poolSize = options.poolSize ?? Math.max(10, workerConnections(concurrency));
  if (options.concurrency !== undefined) {
    try {
      const { available } = await connectionBudget(url);
      const plan = planWorkerConnections(options.concurrency, available);
      if (plan.concurrency < options.concurrency) {
        options.log.warn(
          { event: "worker:concurrency", configured: options.concurrency, concurrency: plan.concurrency, available },
          `concurrency ${options.concurrency} needs ${workerConnections(options.concurrency)} database connections; the database has room for ${available} (max_connections less reserved slots and open sessions, within the database's and role's limits): running with concurrency ${plan.concurrency}`,
        );
      }
      ({ concurrency, poolSize } = plan);
    } catch (error) {
      if (stopEmbedded) await stopEmbedded().catch(() => {});
      throw error;
    }
  }
  const connectionUrl = url;
  const pool = createPool({ url, max: poolSize }, (error) =>
    options.log.warn({ error: redactSecretsIn(error.message, connectionUrl) }, "idle database connection failed"),
  );
  try {
    await migrate(pool, {
      workerSchema: config.worker.schema,
      kinds: binKinds(config.entries).map((k) => ({ kind: k.kind, entry: k.entry.id, handler: k.handlerName })),
    });
  } catch (error) {
    await pool.end().catch(() => {});
    if (stopEmbedded) await stopEmbedded().catch(() => {});
    // The first connection is made here; what the server or the driver says about it may repeat the URL.
    if (error instanceof Error) error.message = redactSecretsIn(error.message, connectionUrl);
    throw error;
  }
  return {
    pool,
    url,
    label,
    concurrency,
    async close() {
      await pool.end().catch(() => {});
      if (stopEmbedded) await stopEmbedded();
    },
  };
}
