/**
 * The problems of one configuration file as they are found, with their
 * positions, and the value checks that report into them. A check returns the
 * parsed value, or undefined when the value is absent or already reported.
 */
import path from "node:path";
import { formatDuration, parseDuration } from "./durations.js";
import { configError, formatProblem, renderPath, type ConfigProblem, type PathSegment, type Secrecy } from "./errors.js";
import { validateTimezone } from "./schedule.js";
import type { ConfigSource } from "./source.js";
import type { AutoBatchSize, Guard } from "./types.js";

/** `batchSize: auto`: one batch should take about this long, starting from this size. */
export const AUTO_BATCH = { targetMs: 250, initial: 1000 } as const;

export class ConfigChecks {
  readonly problems: ConfigProblem[];
  readonly warnings: ConfigProblem[] = [];
  /** Paths whose value is already reported: later checks leave them alone. */
  private readonly reported = new Set<string>();
  readonly displayFile: string;

  constructor(
    readonly source: ConfigSource,
    cwd: string,
  ) {
    this.displayFile = displayName(source.file, cwd);
    this.problems = [...source.problems];
    for (const problem of source.problems) this.reported.add(problem.path);
    // Unchecked values (a variable not set where `validate` runs): later checks leave them alone.
    for (const unchecked of source.deferred) {
      this.reported.add(unchecked.path);
      this.warnings.push(unchecked);
    }
  }

  /** Record a problem at `at` (`where: "key"`: named by its key, e.g. an unknown key). */
  add(at: readonly PathSegment[], message: string, where: "key" | "value" = "value", extra: Partial<ConfigProblem> = {}): void {
    this.problems.push({ ...this.place(at, where), path: renderPath(at), message, ...extra });
    if (where === "value") this.reported.add(renderPath(at));
  }

  warn(at: readonly PathSegment[], message: string): void {
    this.warnings.push({ ...this.place(at, "value"), path: renderPath(at), message });
  }

  /** True when nothing is reported yet about the value at `at`. */
  ok(at: readonly PathSegment[]): boolean {
    return !this.reported.has(renderPath(at));
  }

  /** Whether the value at `at` may be echoed in a message. */
  secrecy(at: readonly PathSegment[]): Secrecy {
    const rendered = renderPath(at);
    if (this.source.interpolation.secretPaths.has(rendered)) return "env";
    return rendered === "database.url" || rendered === "http.token" ? "secret" : false;
  }

  /** Throw every problem recorded so far as one error. */
  fail(): never {
    throw configError({ file: this.source.file, displayFile: this.displayFile, problems: this.problems });
  }

  formattedWarnings(): string[] {
    return this.warnings.map((warning) => formatProblem(this.displayFile, warning));
  }

  duration(at: PathSegment[], value: unknown, rule: { positive?: boolean; max?: number; maxWhy?: string } = {}): number | undefined {
    if (typeof value !== "string" || !this.ok(at)) return undefined;
    try {
      const ms = parseDuration(value);
      if (rule.positive === true && ms <= 0) {
        this.add(at, `expected a duration longer than 0s, found ${JSON.stringify(value)}`);
      } else if (rule.max !== undefined && ms >= rule.max) {
        this.add(
          at,
          `expected less than ${formatDuration(rule.max)}${rule.maxWhy ? ` (${rule.maxWhy})` : ""}, found ${JSON.stringify(value)}`,
        );
      } else {
        return ms;
      }
    } catch (error) {
      this.add(at, messageOf(error));
    }
    return undefined;
  }

  /** A fraction 0..1 written as a number or a percentage (`10%`). */
  fraction(at: PathSegment[], value: unknown): number | undefined {
    if (!this.ok(at)) return undefined;
    if (typeof value === "number") return value;
    if (typeof value !== "string") return undefined;
    const percent = Number(value.replace("%", "").trim());
    if (percent > 100) {
      this.add(at, `expected a percentage from 0% to 100%, found ${JSON.stringify(value)}`);
      return undefined;
    }
    return percent / 100;
  }

  /** A positive integer, `auto` or `auto <duration>`. */
  batchSize(at: PathSegment[], value: unknown): number | AutoBatchSize | undefined {
    if (!this.ok(at)) return undefined;
    if (typeof value === "number") return value;
    if (typeof value !== "string") return undefined;
    const target = value.replace(/^auto\s*/, "");
    const targetMs = target === "" ? AUTO_BATCH.targetMs : this.duration(at, target, { positive: true });
    return targetMs === undefined ? undefined : { auto: true, targetMs, initial: AUTO_BATCH.initial };
  }

  /** An IANA timezone, canonically spelled. */
  timezone(at: PathSegment[], value: unknown): string | undefined {
    if (typeof value !== "string" || !this.ok(at)) return undefined;
    try {
      return validateTimezone(value);
    } catch (error) {
      this.add(at, messageOf(error));
      return undefined;
    }
  }

  guard(at: PathSegment[], value: unknown): Guard | undefined {
    if (!isObject(value) || !this.ok(at)) return undefined;
    const result: Guard = {};
    if (typeof value["maxRows"] === "number" && this.ok([...at, "maxRows"])) result.maxRows = value["maxRows"];
    const maxFraction = this.fraction([...at, "maxFraction"], value["maxFraction"]);
    if (maxFraction !== undefined) result.maxFraction = maxFraction;
    return result;
  }

  private place(at: readonly PathSegment[], where: "key" | "value"): Pick<ConfigProblem, "line" | "column"> {
    const position = this.source.locate(at, where);
    return { line: position?.line ?? null, column: position?.column ?? null };
  }
}

/** How a file is named in messages: relative to the working directory when inside it. */
export function displayName(file: string | null, cwd: string): string {
  if (file === null) return "(config)";
  const relative = path.relative(cwd, file);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : file;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
