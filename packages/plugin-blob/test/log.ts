/** A logger that keeps every line (with its bindings) for the blob tests' assertions. */
export interface Line {
  level: "debug" | "info" | "warn" | "error";
  msg: string | undefined;
  [key: string]: unknown;
}

export function captureLogger(lines: Line[] = [], bindings: Record<string, unknown> = {}) {
  const write = (level: Line["level"]) => (obj: object, msg?: string) => lines.push({ ...bindings, ...obj, level, msg });
  const logger = {
    lines,
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: (more: Record<string, unknown>) => captureLogger(lines, { ...bindings, ...more }),
  };
  return logger;
}
