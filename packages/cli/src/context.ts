/**
 * What every command shares: the loaded config (first-party plugins resolve
 * from the CLI's own dependencies), the logger and the output channel.
 */
import { fileURLToPath } from "node:url";
import { loadConfig, PurgerError, type Logger, type PurgerConfig, type EntryConfig } from "@purger/core/host";

export interface Io {
  /** Write to stdout (results, tables, `--json`). */
  out(text: string): void;
  log: Logger;
  /** stdout is a terminal. */
  isTTY: boolean;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface ConfigFlags {
  config?: string;
}

/** The CLI package's directory: `use:` falls back to resolving from here. */
export const cliPackageDir = fileURLToPath(new URL("..", import.meta.url));

export async function loadCliConfig(flags: ConfigFlags, io: Io, options: { deferUnsetVariables?: boolean } = {}): Promise<PurgerConfig> {
  const config = await loadConfig({
    ...(flags.config ? { configPath: flags.config } : {}),
    cwd: io.cwd,
    env: io.env,
    resolvePaths: [cliPackageDir],
    ...options,
  });
  for (const warning of config.warnings ?? []) io.log.warn({ event: "config:warning", file: config.file }, warning);
  return config;
}

export function findEntry(config: PurgerConfig, id: string): EntryConfig {
  const entry = config.entries.find((e) => e.id === id);
  if (entry) return entry;
  const ids = config.entries.map((e) => e.id);
  const close = ids.filter((other) => similar(other, id));
  throw new PurgerError("USAGE", `no entry "${id}" in ${config.file ?? "the config"}`, {
    hint: close.length > 0 ? `did you mean "${close[0]}"? entries: ${ids.join(", ")}` : `entries: ${ids.join(", ") || "(none)"}`,
  });
}

function similar(a: string, b: string): boolean {
  return a.includes(b) || b.includes(a) || editDistance(a, b) <= Math.max(2, Math.floor(b.length / 3));
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = current;
    }
  }
  return row[b.length]!;
}

/** Abort on SIGINT/SIGTERM; a second signal is the user insisting. */
export function onShutdownSignal(handler: (signal: NodeJS.Signals) => void): () => void {
  const listener = (signal: NodeJS.Signals) => handler(signal);
  process.on("SIGINT", listener);
  process.on("SIGTERM", listener);
  return () => {
    process.off("SIGINT", listener);
    process.off("SIGTERM", listener);
  };
}
