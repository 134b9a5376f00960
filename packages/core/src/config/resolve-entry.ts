/**
 * One entry of `plugins:` → `EntryConfig`: its own keys over `defaults`, its
 * options through the plugin's schema, its retention as the plugin requires,
 * and what a plugin cannot do (a bin-only plugin has no schedule; a plugin
 * that cannot count cannot be guarded).
 */
import type { AnyPlugin } from "../plugin.js";
import { isObject, messageOf, type ConfigChecks } from "./checks.js";
import { ajvProblems, type PathSegment } from "./errors.js";
import { validateInterpolated } from "./interpolate.js";
import { optionsValidator } from "./resolve-plugin.js";
import { parseSchedule } from "./schedule.js";
import type { AutoBatchSize, EntryConfig, Guard, Schedule } from "./types.js";

/** Built-in defaults of an entry (`purger schema` shows them). */
export const ENTRY_DEFAULTS = { batchSize: 1000, timeoutMs: 10 * 60_000, jitter: 0, runOnStart: false } as const;

/** graphile-worker considers a job lock stale after 4 hours: no slice may last that long. */
export const MAX_TIMEOUT = {
  ms: 4 * 3_600_000,
  why: "graphile-worker considers a job lock stale after 4h; a run continues in further slices anyway",
};

/** `defaults:` of the file, parsed. */
export interface EntryDefaults {
  batchSize?: number | AutoBatchSize;
  timeoutMs?: number;
  jitter?: number;
  retentionMs?: number;
  guard?: Guard;
  runOnStart?: boolean;
}

export interface EntryContext {
  index: number;
  raw: Record<string, unknown>;
  /** Undefined when it could not be loaded (already reported). */
  plugin: AnyPlugin | undefined;
  defaults: EntryDefaults;
  /** The top-level timezone. */
  timezone: string;
  /** `plugins[1] (id "foo")`, for plugin problems. */
  subject: string;
}

export function resolveEntry(checks: ConfigChecks, context: EntryContext): EntryConfig {
  const { index, raw, plugin, defaults } = context;
  const base: PathSegment[] = ["plugins", index];
  const at = (key: string): PathSegment[] => [...base, key];
  const pluginName = plugin === undefined ? "" : `plugin ${plugin.name}`;
  const own = <T>(key: string, check: (path: PathSegment[], value: unknown) => T | undefined, inherited: T): T =>
    raw[key] === undefined ? inherited : (check(at(key), raw[key]) ?? inherited);

  // When: a schedule (cron in a timezone, or every …) or after another entry.
  const timezone = own("timezone", (path, value) => checks.timezone(path, value), context.timezone);
  let schedule: Schedule | null = null;
  if (typeof raw["schedule"] === "string" && checks.ok(at("schedule"))) {
    try {
      schedule = parseSchedule(raw["schedule"], { timezone });
    } catch (error) {
      checks.add(at("schedule"), messageOf(error));
    }
  }
  if (raw["timezone"] !== undefined && schedule?.kind === "every") {
    checks.warn(at("timezone"), "a timezone applies to cron schedules only; this entry's schedule is an interval");
  }
  const after = typeof raw["after"] === "string" ? raw["after"] : null;
  if (after !== null && raw["schedule"] !== undefined) {
    checks.add(
      at("after"),
      "an entry runs on a schedule or after another entry, not both; expected either schedule or after, found both",
      "key",
    );
  }

  // How: the entry's own keys over `defaults`.
  const batchSize = own("batchSize", (path, value) => checks.batchSize(path, value), defaults.batchSize ?? ENTRY_DEFAULTS.batchSize);
  const timeoutMs = own(
    "timeout",
    (path, value) => checks.duration(path, value, { positive: true, max: MAX_TIMEOUT.ms, maxWhy: MAX_TIMEOUT.why }),
    defaults.timeoutMs ?? ENTRY_DEFAULTS.timeoutMs,
  );
  const jitter = own("jitter", (path, value) => checks.fraction(path, value), defaults.jitter ?? ENTRY_DEFAULTS.jitter);
  const runOnStart = typeof raw["runOnStart"] === "boolean" ? raw["runOnStart"] : (defaults.runOnStart ?? ENTRY_DEFAULTS.runOnStart);
  const ownRetentionMs = raw["retention"] === undefined ? undefined : checks.duration(at("retention"), raw["retention"]);
  const ownGuard = raw["guard"] === undefined ? undefined : checks.guard(at("guard"), raw["guard"]);

  // Options, through the plugin's own schema (its defaults applied).
  let options: unknown = isObject(raw["options"]) ? raw["options"] : {};
  let optionsValid = false;
  if (plugin !== undefined && (raw["options"] === undefined || checks.ok(at("options")))) {
    options = cloneOptions(options);
    const validate = optionsValidator(plugin);
    validateInterpolated(validate, options, at("options"), checks.source.interpolation);
    optionsValid = (validate.errors ?? []).length === 0;
    for (const problem of ajvProblems(validate.errors ?? [], { basePath: at("options"), isSecret: (path) => checks.secrecy(path) })) {
      checks.add(problem.path, problem.message, problem.at);
    }
  }

  // Retention: required when the plugin uses one, refused when it does not.
  let retentionMs: number | null = ownRetentionMs ?? defaults.retentionMs ?? null;
  if (plugin !== undefined && optionsValid) {
    let usesRetention: boolean | undefined;
    try {
      usesRetention = typeof plugin.usesRetention === "function" ? Boolean(plugin.usesRetention(options)) : plugin.usesRetention;
    } catch (error) {
      checks.add(at("use"), `usesRetention(options) threw: ${messageOf(error)}`, "value", { subject: context.subject, code: "PLUGIN" });
    }
    if (usesRetention === true && retentionMs === null && raw["retention"] === undefined) {
      checks.add(
        base,
        `missing required key "retention": ${pluginName} processes items older than a retention window; expected a duration like 30d (or defaults.retention)`,
      );
    } else if (usesRetention === false) {
      if (raw["retention"] !== undefined) {
        checks.add(at("retention"), `this plugin uses no retention (${pluginName} with these options); remove the key`, "key");
      }
      retentionMs = null;
    }
  }

  // What a plugin without a sweep (bin handlers only) cannot do; guards a plugin cannot enforce.
  let guard = mergeGuard(defaults.guard, ownGuard);
  if (plugin !== undefined && typeof plugin.batch !== "function") {
    for (const key of ["schedule", "runOnStart", "after", "guard"]) {
      if (raw[key] !== undefined && raw[key] !== false) {
        checks.add(at(key), `${pluginName} has no scheduled sweep (bin handlers only), so ${key} does nothing here; remove the key`, "key");
      }
    }
    guard = null;
  } else if (plugin !== undefined && guard !== null) {
    guard = enforceableGuard(checks, base, guard, plugin, ownGuard);
  }

  const position = checks.source.locate(base, "value");
  return {
    id: typeof raw["id"] === "string" ? raw["id"] : `plugins[${index}]`,
    use: typeof raw["use"] === "string" ? raw["use"] : (plugin?.name ?? ""),
    plugin: plugin as AnyPlugin,
    enabled: typeof raw["enabled"] === "boolean" ? raw["enabled"] : true,
    schedule,
    runOnStart,
    retentionMs,
    batchSize,
    timeoutMs,
    jitter,
    after,
    guard,
    options,
    ...(position === null ? {} : { source: position }),
  };
}

/**
 * The guards the plugin can enforce. One set on the entry that the plugin
 * cannot count is an error (a safety option must never be silently ignored);
 * one inherited from `defaults` is dropped with a warning.
 */
function enforceableGuard(
  checks: ConfigChecks,
  base: PathSegment[],
  guard: Guard,
  plugin: AnyPlugin,
  own: Guard | undefined,
): Guard | null {
  const result: Guard = { ...guard };
  const check = (key: "maxRows" | "maxFraction", able: boolean, why: string): void => {
    if (result[key] === undefined || able) return;
    if (own?.[key] !== undefined) {
      checks.add([...base, "guard", key], `plugin ${plugin.name} ${why}, so this guard cannot be enforced; remove it`, "key");
    } else {
      checks.warn(base, `defaults.guard.${key} does not apply: plugin ${plugin.name} ${why}`);
    }
    delete result[key];
  };
  check("maxRows", typeof plugin.count === "function", "cannot count what qualifies");
  check(
    "maxFraction",
    typeof plugin.count === "function" && typeof plugin.countAll === "function",
    "cannot count what qualifies and all items",
  );
  return Object.keys(result).length === 0 ? null : result;
}

/** `defaults.guard` and the entry's guard, key by key (the entry wins). */
function mergeGuard(inherited: Guard | undefined, own: Guard | undefined): Guard | null {
  const merged = { ...inherited, ...own };
  return Object.keys(merged).length === 0 ? null : merged;
}

function cloneOptions(options: unknown): unknown {
  try {
    return structuredClone(options);
  } catch {
    // Options built in code may hold functions (a custom revoker): validate them in place.
    return options;
  }
}
