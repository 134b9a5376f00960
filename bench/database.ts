/**
 * The database a bench script measures on: a fresh `purger_bench_<name>` on
 * PURGER_BENCH_PG_URL, or on the shared embedded PostgreSQL under
 * `.purger/bench-pg` when that is not set.
 */
import { fileURLToPath } from "node:url";
import { createPool, startEmbeddedPostgres } from "@purger/core/host";

export interface BenchDatabase {
  /** URL of the fresh database. */
  url: string;
  /** Stops the embedded server when this script started it. */
  stop(): Promise<void>;
}

export async function benchDatabase(name: string): Promise<BenchDatabase> {
  let stop = async () => {};
  let url = process.env.PURGER_BENCH_PG_URL;
  if (!url) {
    const server = await startEmbeddedPostgres({ dir: fileURLToPath(new URL("../.purger/bench-pg", import.meta.url)) });
    url = server.url;
    stop = () => server.stop();
  }
  const database = `purger_bench_${name}`;
  const admin = createPool({ url, max: 1 });
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const benchUrl = new URL(url);
  benchUrl.pathname = `/${database}`;
  return { url: benchUrl.toString(), stop };
}
