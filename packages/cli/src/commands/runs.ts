/**
 * `purger runs cancel <entry>`: abandon the entry's unfinished run (a slice
 * ended, or its process died) so that it is never resumed; the next run starts
 * afresh with a new cutoff and the guard. Takes the entry's lock like a run.
 */
import { cancelRun } from "@purger/core/host";
import { connectDatabase } from "../database.js";
import { findEntry, loadCliConfig, type ConfigFlags, type Io } from "../context.js";

export interface RunsCancelFlags extends ConfigFlags {
  json?: boolean;
}

export async function runsCancelCommand(id: string, flags: RunsCancelFlags, io: Io): Promise<number> {
  const config = await loadCliConfig(flags, io);
  const entry = findEntry(config, id);
  const db = await connectDatabase(config, { log: io.log, cwd: io.cwd });
  try {
    const run = await cancelRun({ pool: db.pool, entry: entry.id, workerSchema: config.worker.schema });
    const cancelled = run
      ? { runId: run.id, startedAt: run.startedAt.toISOString(), cutoff: run.cutoff?.toISOString() ?? null, processed: run.processed }
      : null;
    if (flags.json) io.out(`${JSON.stringify({ entry: entry.id, cancelled })}\n`);
    else if (!cancelled) io.out(`${entry.id}: no unfinished run, nothing to cancel\n`);
    else
      io.out(
        `${entry.id}: cancelled run ${cancelled.runId} (started ${cancelled.startedAt}, cutoff ${cancelled.cutoff ?? "none"}, ${cancelled.processed} processed); the next run starts afresh\n`,
      );
    return 0;
  } finally {
    await db.close();
  }
}
