/**
 * The `purger` process: the only place that prints to the terminal and exits.
 */
import { cliVersion } from "./version.js";

const argv = process.argv.slice(2);
// `--version` answers before anything heavy is imported (the engine, Ink, the AWS SDK): it is what health checks and
// install scripts call.
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  process.stdout.write(`${cliVersion()}\n`);
} else {
  const [{ createLogger }, { main }] = await Promise.all([import("./logger.js"), import("./main.js")]);
  const log = createLogger();
  const code = await main(
    argv,
    {
      out: (text) => process.stdout.write(text),
      log,
      isTTY: process.stdout.isTTY === true,
      cwd: process.cwd(),
      env: process.env,
    },
    (text) => process.stderr.write(text),
  );
  // Let stdout drain (pipes) before exiting.
  process.stdout.write("", () => process.exit(code));
}
