/** @purger/cli as a library: run the command line in-process (tests, embedding). */
export { main, formatError } from "./main.js";
export type { Io } from "./context.js";
