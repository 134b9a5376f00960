/**
 * A configuration source → `PurgerConfig`: structure checked against the
 * JSON Schema, values parsed (durations, schedules, timezones), defaults
 * applied, plugins loaded and their options validated, `after:` chains
 * checked. Every problem of the file is collected, then thrown at once.
 */
import type { AnyPlugin } from "../plugin.js";
import { ConfigChecks, isObject, messageOf } from "./checks.js";
import { parseDuration } from "./durations.js";
import { isPurgerError } from "../errors.js";
import { ajvProblems, didYouMean, type PathProblem, type PathSegment } from "./errors.js";
import { validateInterpolated } from "./interpolate.js";
import { ENTRY_DEFAULTS, MAX_TIMEOUT, resolveEntry, type EntryDefaults } from "./resolve-entry.js";
import { loadPlugin, pluginShapeProblems } from "./resolve-plugin.js";
import { configShapeValidator, DEFAULTS_KEYS, ENTRY_KEYS, EXPECTED } from "./schema.js";
import type { ConfigSource } from "./source.js";
import type { EntryConfig, PurgerConfig } from "./types.js";

export interface ResolveOptions {
  /** Directory relative paths are taken from (the file's directory when there is a file). */
  dir: string;
  /** The working directory (package lookup, and how file names are shown). */
  cwd: string;
  /** Further directories to resolve `use:` package names from. */
  resolvePaths?: string[];
  /** Plugin objects given directly as `use` in code, by entry index. */
  inlinePlugins?: Map<number, AnyPlugin>;
}

/** The drain after SIGTERM is a timer, and a Node timer longer than 2^31-1 ms fires at once. */
const MAX_TIMER_MS = 24 * 86_400_000;

/** Defaults of purger.yaml (`purger schema` shows them). */
export const CONFIG_DEFAULTS = {
  concurrency: 4,
  shutdownTimeoutMs: 30_000,
  workerSchema: "purger_worker",
  runsKeepMs: 30 * 86_400_000,
  timezone: "UTC",
  listen: "127.0.0.1:9464",
  httpMaxConnections: 32,
  ...ENTRY_DEFAULTS,
} as const;

export async function resolveSource(source: ConfigSource, options: ResolveOptions): Promise<PurgerConfig> {
  const top = resolveTopLevel(source, options);
  const plugins = await Promise.all(
    top.rawEntries.map((raw, index) => loadEntryPlugin(top.checks, options, raw, index, top.subject(index))),
  );
  return resolveEntries(top, plugins);
}

/**
 * `resolveSource` for a configuration whose plugins are all given as objects: nothing to
 * import, so no await — the testkit builds its entries with it, synchronously, and they are
 * the entries purger.yaml would make (test/testing.test.ts). A `use:` string is a problem here.
 */
export function resolveInlineSource(source: ConfigSource, options: ResolveOptions): PurgerConfig {
  const top = resolveTopLevel(source, options);
  const plugins = top.rawEntries.map((raw, index) => {
    const inline = inlineEntryPlugin(top.checks, options, index, top.subject(index));
    if (inline.given) return inline.plugin;
    if (isObject(raw) && typeof raw["use"] === "string" && top.checks.ok(["plugins", index, "use"])) {
      top.checks.add(["plugins", index, "use"], "a package name or path is loaded by resolveConfig; give the plugin object here", "value", {
        subject: top.subject(index),
        code: "PLUGIN",
      });
    }
    return undefined;
  });
  return resolveEntries(top, plugins);
}

/** What is resolved before the plugins are loaded. */
interface TopLevel {
  source: ConfigSource;
  options: ResolveOptions;
  checks: ConfigChecks;
  root: Record<string, unknown>;
  timezone: string;
  database: Record<string, unknown>;
  worker: Record<string, unknown>;
  workerSchema: string;
  shutdownTimeoutMs: number;
  runsKeepMs: number;
  http: PurgerConfig["http"];
  defaults: EntryDefaults;
  rawEntries: unknown[];
  idIndex: Map<string, number>;
  subject: (index: number) => string;
}

function resolveTopLevel(source: ConfigSource, options: ResolveOptions): TopLevel {
  const checks = new ConfigChecks(source, options.cwd);

  // Syntax errors leave nothing to check.
  if (source.format === "yaml" && checks.problems.some((problem) => /^invalid (YAML|JSON):/.test(problem.message))) checks.fail();
  const data = source.data;
  if (data === undefined || data === null) {
    checks.add([], "the file is empty; expected a mapping with at least `plugins:`");
    checks.fail();
  }

  // 1. Structure and types.
  const validate = configShapeValidator();
  validateInterpolated(validate, data, [], source.interpolation);
  for (const problem of ajvProblems(validate.errors ?? [], { expectedByDef: EXPECTED, isSecret: (path) => checks.secrecy(path) })) {
    // A value whose interpolation failed is reported already; its raw `${…}` would only add noise.
    if (problem.at === "value" && !checks.ok(problem.path)) continue;
    checks.add(problem.path, defaultsKeyMessage(problem) ?? durationMessage(problem, data) ?? problem.message, problem.at);
  }
  const root = isObject(data) ? data : {};

  // 2. Top level.
  const timezone = checks.timezone(["timezone"], root["timezone"]) ?? CONFIG_DEFAULTS.timezone;
  const database = isObject(root["database"]) ? root["database"] : {};
  const worker = isObject(root["worker"]) ? root["worker"] : {};
  const workerSchema = typeof worker["schema"] === "string" ? worker["schema"] : CONFIG_DEFAULTS.workerSchema;
  checkWorkerSchema(checks, workerSchema);
  const shutdownTimeoutMs =
    checks.duration(["worker", "shutdownTimeout"], worker["shutdownTimeout"], {
      max: MAX_TIMER_MS,
      maxWhy: "a Node timer waits at most 24.8 days",
    }) ?? CONFIG_DEFAULTS.shutdownTimeoutMs;
  const runs = isObject(root["runs"]) ? root["runs"] : {};
  const runsKeepMs = checks.duration(["runs", "keep"], runs["keep"], { positive: true }) ?? CONFIG_DEFAULTS.runsKeepMs;
  const http = isObject(root["http"]) ? resolveHttp(checks, root["http"]) : null;
  const defaults = resolveDefaults(checks, isObject(root["defaults"]) ? root["defaults"] : {});

  // 3. Entries: unique ids, then (the caller loads the plugins) each entry.
  const rawEntries: unknown[] = Array.isArray(root["plugins"]) ? root["plugins"] : [];
  const subject = (index: number): string => {
    const raw = rawEntries[index];
    return `plugins[${index}]${isObject(raw) && typeof raw["id"] === "string" ? ` (id ${JSON.stringify(raw["id"])})` : ""}`;
  };
  const idIndex = indexIds(checks, rawEntries);
  return {
    source,
    options,
    checks,
    root,
    timezone,
    database,
    worker,
    workerSchema,
    shutdownTimeoutMs,
    runsKeepMs,
    http,
    defaults,
    rawEntries,
    idIndex,
    subject,
  };
}

function resolveEntries(top: TopLevel, plugins: (AnyPlugin | undefined)[]): PurgerConfig {
  const { checks, rawEntries, defaults, timezone, subject, worker } = top;
  // Indexed like `plugins:` (a slot stays empty when an item is not a mapping).
  const resolved: (EntryConfig | undefined)[] = rawEntries.map((raw, index) =>
    isObject(raw) ? resolveEntry(checks, { index, raw, plugin: plugins[index], defaults, timezone, subject: subject(index) }) : undefined,
  );
  checkAfter(checks, resolved, top.idIndex);

  if (checks.problems.length > 0) checks.fail();

  return {
    file: top.source.file,
    dir: top.options.dir,
    database: { url: typeof top.database["url"] === "string" ? top.database["url"] : null },
    worker: {
      concurrency: typeof worker["concurrency"] === "number" ? worker["concurrency"] : CONFIG_DEFAULTS.concurrency,
      shutdownTimeoutMs: top.shutdownTimeoutMs,
      schema: top.workerSchema,
    },
    runs: { keepMs: top.runsKeepMs },
    timezone,
    http: top.http,
    entries: resolved.filter((entry): entry is EntryConfig => entry !== undefined),
    warnings: checks.formattedWarnings(),
  };
}

function resolveDefaults(checks: ConfigChecks, raw: Record<string, unknown>): EntryDefaults {
  const at = (key: string): PathSegment[] => ["defaults", key];
  const defaults: EntryDefaults = {};
  const batchSize = checks.batchSize(at("batchSize"), raw["batchSize"]);
  if (batchSize !== undefined) defaults.batchSize = batchSize;
  const timeoutMs = checks.duration(at("timeout"), raw["timeout"], { positive: true, max: MAX_TIMEOUT.ms, maxWhy: MAX_TIMEOUT.why });
  if (timeoutMs !== undefined) defaults.timeoutMs = timeoutMs;
  const jitter = checks.fraction(at("jitter"), raw["jitter"]);
  if (jitter !== undefined) defaults.jitter = jitter;
  const retentionMs = checks.duration(at("retention"), raw["retention"]);
  if (retentionMs !== undefined) defaults.retentionMs = retentionMs;
  const guard = checks.guard(at("guard"), raw["guard"]);
  if (guard !== undefined) defaults.guard = guard;
  if (typeof raw["runOnStart"] === "boolean") defaults.runOnStart = raw["runOnStart"];
  return defaults;
}

function checkWorkerSchema(checks: ConfigChecks, schema: string): void {
  if (!checks.ok(["worker", "schema"])) return;
  let reserved: string | null = null;
  if (schema === "graphile_worker") reserved = "a host application's own graphile-worker may live there";
  else if (schema === "purger") reserved = "purger's own tables live there";
  else if (schema.startsWith("pg_") || schema === "information_schema") reserved = "PostgreSQL reserves it";
  if (reserved !== null) {
    checks.add(["worker", "schema"], `expected a schema of purger's worker alone (${reserved}), found ${JSON.stringify(schema)}`);
  }
}

/**
 * The admin endpoint. It can put items in the bin (deletions), so every request carries the token,
 * on loopback too: any local process or user could reach it otherwise.
 */
function resolveHttp(checks: ConfigChecks, http: Record<string, unknown>): NonNullable<PurgerConfig["http"]> {
  const raw = http["listen"];
  const listen = typeof raw === "number" ? `127.0.0.1:${raw}` : typeof raw === "string" ? raw : CONFIG_DEFAULTS.listen;
  const token = typeof http["token"] === "string" ? http["token"] : "";
  if (typeof raw === "string" && checks.ok(["http", "listen"])) {
    const port = Number(raw.slice(raw.lastIndexOf(":") + 1));
    if (port > 65535) checks.add(["http", "listen"], `expected a port from 0 to 65535, found ${port}`);
  }
  if (http["token"] === undefined && checks.ok(["http", "token"])) {
    checks.add(
      ["http"],
      `missing required key "token": every request to the admin endpoint (${listen}) must carry it; expected a token (token: \${PURGER_ADMIN_TOKEN})`,
    );
  }
  const maxConnections = typeof http["maxConnections"] === "number" ? http["maxConnections"] : CONFIG_DEFAULTS.httpMaxConnections;
  const probesWithoutToken = http["probesWithoutToken"] === true;
  // Binding happens in `purger run`, long after resolution: keep the place so "port in use" can name its line.
  const listenAt = checks.source.locate(raw === undefined ? ["http"] : ["http", "listen"], raw === undefined ? "key" : "value");
  return { listen, token, maxConnections, probesWithoutToken, ...(listenAt ? { listenAt } : {}) };
}

/** id → index of its first entry; later duplicates are reported. */
function indexIds(checks: ConfigChecks, rawEntries: unknown[]): Map<string, number> {
  const idIndex = new Map<string, number>();
  rawEntries.forEach((raw, index) => {
    if (!isObject(raw) || typeof raw["id"] !== "string" || !checks.ok(["plugins", index, "id"])) return;
    const first = idIndex.get(raw["id"]);
    if (first === undefined) {
      idIndex.set(raw["id"], index);
      return;
    }
    const firstAt = checks.source.locate(["plugins", first, "id"], "value");
    checks.add(
      ["plugins", index, "id"],
      `duplicate id ${JSON.stringify(raw["id"])}, already used by plugins[${first}]${firstAt ? ` (line ${firstAt.line})` : ""}; expected a unique id`,
    );
  });
  return idIndex;
}

async function loadEntryPlugin(
  checks: ConfigChecks,
  options: ResolveOptions,
  raw: unknown,
  index: number,
  subject: string,
): Promise<AnyPlugin | undefined> {
  const at: PathSegment[] = ["plugins", index, "use"];
  const inline = inlineEntryPlugin(checks, options, index, subject);
  if (inline.given) return inline.plugin;
  if (!isObject(raw) || typeof raw["use"] !== "string" || !checks.ok(at)) return undefined;
  try {
    return await loadPlugin(raw["use"], {
      configDir: options.dir,
      cwd: options.cwd,
      ...(options.resolvePaths ? { resolvePaths: options.resolvePaths } : {}),
    });
  } catch (error) {
    const hint = isPurgerError(error) ? error.hint : undefined;
    checks.add(at, messageOf(error), "value", { subject, code: "PLUGIN", ...(hint ? { hint } : {}) });
    return undefined;
  }
}

/** The plugin object given as `use` in code (checked for its shape), if one was. */
function inlineEntryPlugin(
  checks: ConfigChecks,
  options: ResolveOptions,
  index: number,
  subject: string,
): { given: boolean; plugin: AnyPlugin | undefined } {
  const inline = options.inlinePlugins?.get(index);
  if (inline === undefined) return { given: false, plugin: undefined };
  const shape = pluginShapeProblems(inline);
  if (shape.length === 0) return { given: true, plugin: inline };
  checks.add(["plugins", index, "use"], `the plugin given as use does not look like a purger plugin: ${shape.join("; ")}`, "value", {
    subject,
    code: "PLUGIN",
  });
  return { given: true, plugin: undefined };
}

/** `after:` names an existing entry, and the links make no cycle. */
function checkAfter(checks: ConfigChecks, entries: (EntryConfig | undefined)[], idIndex: Map<string, number>): void {
  entries.forEach((entry, index) => {
    if (entry === undefined || entry.after === null || !checks.ok(["plugins", index, "after"])) return;
    const targetIndex = idIndex.get(entry.after);
    if (targetIndex === undefined) {
      const suggestion = didYouMean(entry.after, idIndex.keys());
      checks.add(
        ["plugins", index, "after"],
        `no entry has the id ${JSON.stringify(entry.after)}; expected the id of another entry${suggestion ? `; did you mean "${suggestion}"?` : ""}`,
      );
      return;
    }
    const target = entries[targetIndex];
    if (target !== undefined && !target.enabled && entry.enabled) {
      checks.warn(["plugins", index, "after"], `entry "${entry.after}" is disabled, so this entry never runs on its own`);
    }
  });
  for (const cycle of afterCycles(entries, idIndex)) {
    const ids = cycle.map((index) => entries[index]?.id ?? "?");
    checks.add(
      ["plugins", cycle[0] ?? 0, "after"],
      `cycle ${[...ids, ids[0]].join(" → ")}; expected a chain that starts at an entry with a schedule`,
    );
  }
}

/** Each cycle of `after:` links once, as entry indexes in order. */
function afterCycles(entries: (EntryConfig | undefined)[], idIndex: Map<string, number>): number[][] {
  const cycles: number[][] = [];
  const done = new Set<number>();
  entries.forEach((_, start) => {
    const chain: number[] = [];
    const position = new Map<number, number>();
    let current: number | undefined = start;
    while (current !== undefined && !done.has(current) && !position.has(current)) {
      position.set(current, chain.length);
      chain.push(current);
      const after: string | null | undefined = entries[current]?.after;
      current = after === null || after === undefined ? undefined : idIndex.get(after);
    }
    if (current !== undefined && position.has(current)) cycles.push(chain.slice(position.get(current)));
    for (const index of chain) done.add(index);
  });
  return cycles;
}

/** `defaults.schedule` is an entry key that cannot be a default: say so rather than "unknown". */
function defaultsKeyMessage(problem: PathProblem): string | undefined {
  const [first, key, ...rest] = problem.path;
  if (first !== "defaults" || typeof key !== "string" || rest.length > 0 || problem.at !== "key") return undefined;
  if (!(ENTRY_KEYS as readonly string[]).includes(key)) return undefined;
  return `not a default: set ${key} on each entry; expected one of: ${DEFAULTS_KEYS.join(", ")}`;
}

/** A value that is not a duration: parseDuration says why (e.g. months have no fixed length). */
function durationMessage(problem: PathProblem, data: unknown): string | undefined {
  if (!problem.message.startsWith(`expected ${EXPECTED["duration"]}`)) return undefined;
  let value = data;
  for (const segment of problem.path) value = (value as Record<string | number, unknown> | null | undefined)?.[segment];
  if (typeof value !== "string") return undefined;
  try {
    parseDuration(value);
    return undefined;
  } catch (error) {
    return messageOf(error);
  }
}
