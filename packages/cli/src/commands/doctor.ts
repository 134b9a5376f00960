/** `purger doctor`: config, then per entry: targets exist, indexes, permissions, reachability. Exit 1 when an error is found. */
import { checkEntry, type Diagnostic } from "@purger/core/host";
import { connectDatabase } from "../database.js";
import { loadCliConfig, type ConfigFlags, type Io } from "../context.js";

export async function doctorCommand(flags: ConfigFlags & { json?: boolean }, io: Io): Promise<number> {
  const config = await loadCliConfig(flags, io);
  const db = await connectDatabase(config, { log: io.log, cwd: io.cwd });
  try {
    const report: { entry: string; plugin: string; diagnostics: Diagnostic[] }[] = [];
    for (const entry of config.entries) {
      const diagnostics = await checkEntry({ pool: db.pool, entry, configDir: config.dir, log: io.log });
      report.push({ entry: entry.id, plugin: entry.plugin.name, diagnostics });
    }
    const errors = report.flatMap((r) => r.diagnostics).filter((d) => d.level === "error").length;
    if (flags.json) {
      io.out(`${JSON.stringify({ database: db.label, entries: report, errors })}\n`);
    } else {
      io.out(`database: ${db.label}: ok\n`);
      for (const r of report) {
        io.out(`${r.entry} (${r.plugin})\n`);
        for (const d of r.diagnostics) {
          io.out(`  ${d.level === "ok" ? "ok   " : d.level === "warn" ? "warn " : "ERROR"} ${d.message}\n`);
          if (d.hint) io.out(`        ${d.hint}\n`);
        }
      }
    }
    return errors > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}
