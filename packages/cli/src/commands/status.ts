/** `purger status [--json]`: runs, bin depth, failures and live processes, read from the database. */
import { clusterStatus, type ClusterStatus } from "@purger/core/host";
import { connectDatabase } from "../database.js";
import { loadCliConfig, type ConfigFlags, type Io } from "../context.js";
import { formatAge, formatTable } from "../format.js";

export async function statusCommand(flags: ConfigFlags & { json?: boolean }, io: Io): Promise<number> {
  const config = await loadCliConfig(flags, io);
  const db = await connectDatabase(config, { log: io.log, cwd: io.cwd });
  try {
    const status = await clusterStatus(
      db.pool,
      config.entries.map((e) => e.id),
    );
    io.out(flags.json ? `${JSON.stringify(status)}\n` : formatStatus(status));
    return 0;
  } finally {
    await db.close();
  }
}

function progressOf(run: { processed: number; total: number | null }): string {
  return `${run.processed}${run.total !== null ? `/${run.total}` : ""}`;
}

export function formatStatus(status: ClusterStatus, now = Date.now()): string {
  const entries = formatTable(
    ["entry", "state", "last run", "status", "processed", "duration", "failures 24h", "error"],
    status.entries.map((e) => [
      e.entry,
      e.running ? `running (${progressOf(e.running)})` : e.unfinished ? `unfinished (${progressOf(e.unfinished)})` : "idle",
      e.last ? `${formatAge(now - e.last.startedAt.getTime())} ago` : "never",
      e.last?.status ?? "",
      e.last ? String(e.last.processed) : "",
      e.last?.durationMs != null ? `${(e.last.durationMs / 1000).toFixed(1)}s` : "",
      String(e.failures),
      e.last?.error ?? e.last?.guard ?? "",
    ]),
  );
  const bin = formatTable(
    ["bin kind", "pending", "oldest", "failed"],
    status.bin.map((b) => [
      b.kind,
      b.parked ? `${b.pending} (${b.parked} no worker knows the kind)` : String(b.pending),
      b.oldestMs === null ? "" : formatAge(b.oldestMs),
      String(b.failed),
    ]),
  );
  const processes =
    status.processes.length === 0
      ? "no purger process is running\n"
      : formatTable(
          ["process", "concurrency", "up", "heartbeat"],
          status.processes.map((p) => [
            p.id,
            String(p.concurrency),
            formatAge(now - p.startedAt.getTime()),
            `${formatAge(now - p.heartbeatAt.getTime())} ago`,
          ]),
        );
  return `${entries}\n${status.bin.length > 0 ? `${bin}\n` : ""}${processes}`;
}
