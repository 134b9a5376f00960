/** `purger plan`: every entry with plugin, target, retention, schedule, next run and backlog. */
import { estimateEntry, formatDuration, nextRunAt, type Schedule } from "@purger/core/host";
import { connectDatabase } from "../database.js";
import { loadCliConfig, type ConfigFlags, type Io } from "../context.js";
import { formatTable } from "../format.js";

export async function planCommand(flags: ConfigFlags & { json?: boolean }, io: Io): Promise<number> {
  const config = await loadCliConfig(flags, io);
  const db = await connectDatabase(config, { log: io.log, cwd: io.cwd });
  try {
    const rows = [];
    for (const entry of config.entries) {
      let backlog: number | null = null;
      let error: string | null = null;
      try {
        backlog = await estimateEntry({ pool: db.pool, entry, configDir: config.dir, log: io.log });
      } catch (e) {
        error = (e as Error).message;
      }
      rows.push({
        id: entry.id,
        plugin: entry.plugin.name,
        target: entry.plugin.describe?.(entry.options) ?? "",
        retention: entry.retentionMs === null ? null : formatDuration(entry.retentionMs),
        schedule: describeSchedule(entry.schedule, entry.after),
        nextRun: entry.enabled && entry.schedule ? (nextRunAt(entry.schedule)?.toISOString() ?? null) : null,
        backlog,
        enabled: entry.enabled,
        error,
      });
    }
    if (flags.json) {
      io.out(`${JSON.stringify({ entries: rows })}\n`);
    } else {
      io.out(
        formatTable(
          ["entry", "plugin", "target", "retention", "schedule", "next run", "backlog"],
          rows.map((r) => [
            r.enabled ? r.id : `${r.id} (disabled)`,
            r.plugin,
            r.target,
            r.retention ?? "-",
            r.schedule,
            r.nextRun ?? "-",
            r.error ? `error: ${r.error}` : r.backlog === null ? "?" : String(r.backlog),
          ]),
        ),
      );
    }
    return rows.some((r) => r.error) ? 2 : 0;
  } finally {
    await db.close();
  }
}

function describeSchedule(schedule: Schedule | null, after: string | null): string {
  if (after) return `after ${after}`;
  if (!schedule) return "bin / manual";
  if (schedule.kind === "every") return `every ${formatDuration(schedule.everyMs)}`;
  return schedule.timezone === "UTC" ? schedule.expression : `${schedule.expression} (${schedule.timezone})`;
}
