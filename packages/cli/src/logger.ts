/**
 * pino JSON lines on stderr (stdout carries only `--json` results and tables).
 */
import pino from "pino";
import type { Logger } from "@purger/core";

export function createLogger(options: { level?: string; destination?: string | number } = {}): Logger & pino.Logger {
  const level = options.level ?? process.env.PURGER_LOG_LEVEL ?? "info";
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: options.destination ?? 2, sync: true }),
  );
}
