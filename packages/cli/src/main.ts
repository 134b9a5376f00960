/**
 * The `purger` command line: parses arguments and dispatches to a command.
 * Returns the exit code; bin.ts is the only place that exits. Each command is
 * imported when it runs, so `purger validate` loads neither Ink, the AWS SDK
 * nor the engine.
 */
import { Command, CommanderError, Option } from "commander";
import { exitCodeOf, isPurgerError, PurgerError } from "@purger/core/host";
import type { Io } from "./context.js";
import { cliVersion } from "./version.js";

export async function main(argv: string[], io: Io, errOut: (text: string) => void): Promise<number> {
  let exitCode = 0;
  const program = new Command("purger")
    .description("Delete what your system no longer needs: safely, on a schedule, at scale.")
    .version(cliVersion())
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: errOut })
    .showHelpAfterError("(run purger --help for usage)");
  const configOption = () => new Option("-c, --config <file>", "purger.yaml to use (default: search from the working directory)");
  const set = (code: number) => {
    exitCode = code;
  };

  program
    .command("validate")
    .description("check purger.yaml without touching any database")
    .addOption(configOption())
    .option("--json", "print the result as JSON")
    .action(async (flags) => set(await (await import("./commands/validate.js")).validateCommand(flags, io)));
  program
    .command("once <id>")
    .description("run one entry now, to completion (a backfill)")
    .addOption(configOption())
    .option("--dry-run", "count (and sample) what would be affected by running the batches and rolling each back")
    .option("--count-only", "a dry run through the plugin's count alone: reads only, no row locks, no triggers")
    .option("--json", "print the run's summary as one JSON object on stdout")
    .option("--no-tui", "no terminal UI: JSON log lines on stderr")
    .option("--no-wait", "fail instead of waiting when another process runs this entry")
    .action(async (id: string, flags) => set(await (await import("./commands/once.js")).onceCommand(id, flags, io)));
  program
    .command("run")
    .description("the service: worker, schedules and bin until SIGTERM/SIGINT")
    .addOption(configOption())
    .option("--no-tui", "no terminal UI: JSON log lines on stderr")
    .addOption(new Option("--concurrency <n>", "parallel tasks in this process (overrides worker.concurrency)").argParser(positiveInt))
    .action(async (flags) => set(await (await import("./commands/run.js")).runCommand(flags, io)));
  program
    .command("status")
    .description("runs, bin depth, failures and live processes")
    .addOption(configOption())
    .option("--json", "print JSON")
    .action(async (flags) => set(await (await import("./commands/status.js")).statusCommand(flags, io)));
  program
    .command("plan")
    .description("every entry: plugin, target, retention, schedule, next run, backlog")
    .addOption(configOption())
    .option("--json", "print JSON")
    .action(async (flags) => set(await (await import("./commands/plan.js")).planCommand(flags, io)));
  program
    .command("doctor")
    .description("check the config against the database and services (tables, columns, indexes, buckets)")
    .addOption(configOption())
    .option("--json", "print JSON")
    .action(async (flags) => set(await (await import("./commands/doctor.js")).doctorCommand(flags, io)));
  program
    .command("enqueue <kind> <json>")
    .description('put an item in the bin, e.g. purger enqueue blobs.prefix \'{"prefix":"teams/42/"}\'')
    .addOption(configOption())
    .action(async (kind: string, json: string, flags) =>
      set(await (await import("./commands/enqueue.js")).enqueueCommand(kind, json, flags, io)),
    );
  program
    .command("bin <action> [ids...]")
    .description("list | retry | drop bin items (failed ones by default)")
    .addOption(configOption())
    .option("--all", "retry or drop every failed item")
    .option("--status <status>", "list items with this status (pending, failed, done, dropped)")
    .option("--kind <kind>", "only this kind")
    .option("--json", "print JSON")
    .action(async (action: string, ids: string[], flags) =>
      set(await (await import("./commands/bin.js")).binCommand(action, ids, flags, io)),
    );
  const runs = program.command("runs").description("act on an entry's runs");
  runs
    .command("cancel <entry>")
    .description("abandon the entry's unfinished run (never resumed; the next run starts afresh)")
    .addOption(configOption())
    .option("--json", "print JSON")
    .action(async (id: string, flags) => set(await (await import("./commands/runs.js")).runsCancelCommand(id, flags, io)));
  program
    .command("schema")
    .description("print the JSON Schema of purger.yaml")
    .action(async () => set(await (await import("./commands/schema.js")).schemaCommand(io)));
  program
    .command("init")
    .description("write a starter purger.yaml")
    .option("--force", "overwrite an existing purger.yaml")
    .action(async (flags) => set(await (await import("./commands/init.js")).initCommand(flags, io)));
  program
    .command("demo")
    .description("embedded PostgreSQL + S3 server, seeded; every first-party plugin at work")
    .option("--json", "no UI; print the summary as one JSON object")
    .option("--no-tui", "no terminal UI")
    .option("--scale <n>", "data size multiplier (default 1)", parseFloat)
    .action(async (flags) => set(await (await import("./commands/demo.js")).demoCommand(flags, io)));

  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") return 0;
      return 2;
    }
    errOut(formatError(error));
    return exitCodeOf(error);
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new PurgerError("USAGE", `expected a positive integer, found "${value}"`);
  return n;
}

export function formatError(error: unknown): string {
  if (isPurgerError(error)) {
    const hint = error.hint ? `\nhint: ${error.hint}` : "";
    return `purger: ${error.message}${hint}\n`;
  }
  if (error instanceof Error) {
    const pg = error as Error & { code?: string; detail?: string; hint?: string };
    const extra = [pg.detail, pg.hint ? `hint: ${pg.hint}` : undefined].filter(Boolean).join("\n");
    return `purger: ${error.message}${extra ? `\n${extra}` : ""}\n`;
  }
  return `purger: ${String(error)}\n`;
}
