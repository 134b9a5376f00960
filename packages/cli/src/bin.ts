/**
 * The `purger` process: the only place that prints to the terminal and exits.
 */
import { createLogger } from "./logger.js";

import { main } from "./main.js";

const log = createLogger();
const code = await main(
  process.argv.slice(2),
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
