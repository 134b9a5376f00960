/**
 * Find and read the configuration: `--config FILE`, or a search from the
 * working directory up to the project root (search.ts: the nearest directory
 * with a package.json or .git), passing over what others can write to. The
 * search is our own, not cosmiconfig's: cosmiconfig also runs a
 * `.config/config.js` of the working directory and walks up to / when no
 * package.json is found. YAML and JSON files keep source positions for
 * messages (JSON is read by the YAML parser); JavaScript files and
 * package.json are reported by path only.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { isPurgerError, PurgerError } from "../errors.js";
import type { AnyPlugin } from "../plugin.js";
import { configError } from "./errors.js";
import { displayName } from "./checks.js";
import { resolveInlineSource, resolveSource, type ResolveOptions } from "./resolve.js";
import type { PurgerConfigInput } from "./schema.js";
import { searchDirectories } from "./search.js";
import { objectSource, readYamlSource, type ConfigSource, type ReadOptions } from "./source.js";
import { untrustedReason } from "./trust.js";
import type { PurgerConfig } from "./types.js";
import { TSX_WAY_OUT, typeScriptRefusal } from "./typescript.js";

export interface LoadConfigOptions {
  /** `--config FILE` (relative to `cwd`); absent → search. */
  configPath?: string;
  /** Where the search starts, and the second place `use:` package names resolve from. @defaultValue process.cwd() */
  cwd?: string;
  /** Variables for `${VAR}`. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Further directories `use:` package names resolve from (the CLI passes its own package directory). */
  resolvePaths?: string[];
  /**
   * An unset `${VAR}` without a default is a warning and its value is left unchecked, instead of an
   * error (`purger validate` where the secrets are not set, e.g. CI). Commands that connect never set it.
   * @defaultValue false
   */
  deferUnsetVariables?: boolean;
}

/** Where the search looks, in order, in each directory. */
export const SEARCH_PLACES = [
  "purger.yaml",
  "purger.yml",
  ".purgerrc",
  ".purgerrc.yaml",
  ".purgerrc.yml",
  ".purgerrc.json",
  "purger.config.js",
  "purger.config.mjs",
  "purger.config.ts",
  "package.json",
];

/**
 * Load, interpolate, validate and resolve the configuration. Throws
 * `PurgerError("CONFIG")` listing every problem of the file (or "PLUGIN" when
 * only plugins failed to load).
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<PurgerConfig> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const raw = options.configPath === undefined ? await searchConfig(cwd) : await readConfigFile(path.resolve(cwd, options.configPath), cwd);
  const { source, inlinePlugins } = toSource(raw, env, { deferUnsetVariables: options.deferUnsetVariables ?? false });
  return await resolveSource(source, {
    dir: path.dirname(raw.file),
    cwd,
    inlinePlugins,
    ...(options.resolvePaths ? { resolvePaths: options.resolvePaths } : {}),
  });
}

/**
 * Resolve a configuration built in code (`file: null`): same checks as a
 * file. In code, an entry's `use` may be the plugin object itself.
 */
export async function resolveConfig(
  input: PurgerConfigInput,
  options: { dir?: string; cwd?: string; env?: NodeJS.ProcessEnv; resolvePaths?: string[] } = {},
): Promise<PurgerConfig> {
  const { source, resolve } = codeSource(input, options);
  return await resolveSource(source, resolve);
}

/**
 * `resolveConfig` for a configuration whose every `use` is a plugin object: the same
 * checks, without an await (the testkit's `testEntry` returns its entry at once).
 */
export function resolveInlineConfig(
  input: PurgerConfigInput,
  options: { dir?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): PurgerConfig {
  const { source, resolve } = codeSource(input, options);
  return resolveInlineSource(source, resolve);
}

function codeSource(
  input: PurgerConfigInput,
  options: { dir?: string; cwd?: string; env?: NodeJS.ProcessEnv; resolvePaths?: string[] },
): { source: ConfigSource; resolve: ResolveOptions } {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const { value, inlinePlugins } = extractInlinePlugins(input);
  const source = objectSource(null, "object", value, options.env ?? process.env);
  return {
    source,
    resolve: {
      dir: path.resolve(cwd, options.dir ?? "."),
      cwd,
      inlinePlugins,
      ...(options.resolvePaths ? { resolvePaths: options.resolvePaths } : {}),
    },
  };
}

/** For `purger.config.ts`: an identity function that exists for its types. */
export function defineConfig(config: PurgerConfigInput): PurgerConfigInput {
  return config;
}

/** A file found or named, before interpolation. */
type RawConfig = { file: string; format: "yaml"; text: string } | { file: string; format: "json" | "js"; value: unknown; empty?: boolean };

const importLoader = async (filepath: string): Promise<unknown> => {
  const module = (await import(pathToFileURL(filepath).href)) as { default?: unknown };
  return module.default;
};

/**
 * The first search place that exists in the directories of `searchDirectories`
 * (a package.json counts only with a "purger" key). A file others can write
 * to is passed over like such a directory.
 */
async function searchConfig(cwd: string): Promise<RawConfig> {
  const { dirs, projectRoot, skipped } = searchDirectories(cwd);
  for (const dir of dirs) {
    for (const place of SEARCH_PLACES) {
      const file = path.join(dir, place);
      if (!(await isFile(file))) continue;
      const reason = untrustedReason(file);
      if (reason !== null) {
        skipped.push({ path: file, reason });
        continue;
      }
      const raw = await readConfigFile(file, cwd);
      if (place === "package.json" && raw.format !== "yaml" && raw.empty === true) continue;
      return raw;
    }
  }
  const where = projectRoot === null || projectRoot === cwd ? cwd : `${cwd} or its parents up to the project root ${projectRoot}`;
  const notes = [
    ...(projectRoot === null ? ["no package.json or .git in it or above it marks a project, so its parents were not searched"] : []),
    ...(skipped.length === 0 ? [] : [`passed over, as others can write there: ${skipped.map((s) => s.reason).join("; ")}`]),
  ];
  const passedOver = notes.map((note) => `; ${note}`).join("");
  throw new PurgerError(
    "CONFIG",
    `no purger configuration found in ${where} (looked for ${SEARCH_PLACES.slice(0, -1).join(", ")} and "purger" in package.json)${passedOver}`,
    {
      hint:
        skipped.length === 0
          ? "run `purger init` to write a starter purger.yaml, or pass --config FILE"
          : "run `purger init` to write a starter purger.yaml, or pass --config FILE (a file you name is read wherever it is)",
      details: { cwd, projectRoot, searchPlaces: SEARCH_PLACES, skipped },
    },
  );
}

async function readConfigFile(file: string, cwd: string): Promise<RawConfig> {
  try {
    if ((await stat(file)).isDirectory()) {
      throw new PurgerError("CONFIG", `${file} is a directory; expected a configuration file such as purger.yaml`, {
        hint: "pass the file itself to --config",
      });
    }
    const extension = path.extname(file);
    if ([".js", ".mjs", ".cjs", ".ts", ".mts", ".cts"].includes(extension)) {
      const value = await importLoader(file);
      return { file, format: "js", value, empty: value === undefined };
    }
    const text = await readFile(file, "utf8");
    if (path.basename(file) === "package.json") {
      const parsed: unknown = JSON.parse(text);
      const value = isObject(parsed) ? parsed["purger"] : undefined;
      return { file, format: "json", value, empty: value === undefined };
    }
    return { file, format: "yaml", text };
  } catch (error) {
    if (isPurgerError(error)) throw error;
    throw readError(file, cwd, error);
  }
}

function toSource(
  raw: RawConfig,
  env: NodeJS.ProcessEnv,
  read: ReadOptions,
): { source: ConfigSource; inlinePlugins: Map<number, AnyPlugin> } {
  if (raw.format === "yaml") return { source: readYamlSource(raw.file, raw.text, env, read), inlinePlugins: new Map() };
  if (raw.empty === true) {
    const what =
      raw.format === "js"
        ? "has no default export; expected export default defineConfig({ plugins: [...] })"
        : "is empty; expected an object with at least `plugins`";
    throw new PurgerError("CONFIG", `${raw.file} ${what}`, {
      hint: "run `purger init` to write a starter purger.yaml",
      details: { file: raw.file },
    });
  }
  const { value, inlinePlugins } = extractInlinePlugins(raw.value);
  return { source: objectSource(raw.file, raw.format, value, env, read), inlinePlugins };
}

/** Entries whose `use` is a plugin object (code only) get a placeholder `use`; the objects are kept aside by index. */
function extractInlinePlugins(input: unknown): { value: unknown; inlinePlugins: Map<number, AnyPlugin> } {
  const inlinePlugins = new Map<number, AnyPlugin>();
  if (!isObject(input) || !Array.isArray(input["plugins"])) return { value: input, inlinePlugins };
  const plugins = (input["plugins"] as unknown[]).map((entry, index) => {
    if (!isObject(entry) || (typeof entry["use"] !== "object" && typeof entry["use"] !== "function") || entry["use"] === null) return entry;
    const plugin = entry["use"] as AnyPlugin;
    inlinePlugins.set(index, plugin);
    return { ...entry, use: typeof plugin.name === "string" && plugin.name !== "" ? plugin.name : "(plugin object)" };
  });
  return { value: { ...input, plugins }, inlinePlugins };
}

function readError(file: string, cwd: string, error: unknown): PurgerError {
  const code = (error as { code?: string }).code;
  if (code === "ENOENT") {
    return new PurgerError("CONFIG", `cannot read ${displayName(file, cwd)}: no such file`, {
      hint: "check the path given to --config",
      cause: error,
      details: { file },
    });
  }
  const refusal = typeScriptRefusal(file, error);
  if (refusal !== null) {
    return new PurgerError("CONFIG", `cannot load ${displayName(file, cwd)}: ${refusal}`, {
      hint: `write purger.yaml or purger.config.js instead; or ${TSX_WAY_OUT}`,
      cause: error,
      details: { file },
    });
  }
  const message = error instanceof Error ? (error.message.split("\n")[0] ?? error.message) : String(error);
  if (error instanceof SyntaxError || /JSON/.test(message)) {
    return configError({
      file,
      displayFile: displayName(file, cwd),
      problems: [{ line: null, column: null, path: "", message: `invalid JSON: ${message}` }],
    });
  }
  return new PurgerError("CONFIG", `cannot load ${displayName(file, cwd)}: ${message}`, {
    hint: "a JavaScript or TypeScript configuration must load on its own; run it with node/tsx to see the full error",
    cause: error,
    details: { file },
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}
