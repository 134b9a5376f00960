/** `purger validate`: check purger.yaml (syntax, schema, plugins, options) without touching any database. */
import { formatDuration } from "@purger/core/host";
import { loadCliConfig, type ConfigFlags, type Io } from "../context.js";

export async function validateCommand(flags: ConfigFlags & { json?: boolean }, io: Io): Promise<number> {
  // Secrets need not be set where validate runs (a CI job): a value using an unset variable is a warning, left unchecked.
  const config = await loadCliConfig(flags, io, { deferUnsetVariables: true });
  if (flags.json) {
    io.out(
      `${JSON.stringify({ valid: true, file: config.file, entries: config.entries.map((e) => ({ id: e.id, plugin: e.plugin.name })), warnings: config.warnings ?? [] })}\n`,
    );
    return 0;
  }
  io.out(`${config.file ?? "config"}: valid, ${config.entries.length} ${config.entries.length === 1 ? "entry" : "entries"}\n`);
  for (const e of config.entries) {
    const retention = e.retentionMs === null ? "" : `, retention ${formatDuration(e.retentionMs)}`;
    io.out(`  ${e.id}: ${e.plugin.name}${retention}${e.enabled ? "" : " (disabled)"}\n`);
  }
  for (const warning of config.warnings ?? []) io.out(`warning: ${warning}\n`);
  return 0;
}
