/**
 * `use:` → a plugin object. A ./relative or absolute path is taken from the
 * configuration file's directory; a package name is looked up from that
 * directory, then the working directory, then each extra path (the CLI passes
 * its own, so first-party plugins resolve from anywhere) — except a
 * first-party `@purger/*` name, which resolves from the extra paths first, so
 * the plugins that ship with the CLI cannot be shadowed by a copy in some
 * parent's node_modules. A `node_modules` in a directory others can write to
 * is passed over (see trust.ts). Packages resolve the way `import` does
 * (their `exports` with the "import" condition), and the module is loaded
 * with dynamic `import()`: TypeScript only where a loader is registered
 * (tsx), otherwise a clear error (typescript.ts).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ValidateFunction } from "ajv";
import { PurgerError } from "../errors.js";
import type { AnyPlugin } from "../plugin.js";
import { describeValue, didYouMean } from "./errors.js";
import { createAjv } from "./schema.js";
import { untrustedReason } from "./trust.js";
import { TSX_WAY_OUT, typeScriptRefusal } from "./typescript.js";

export interface ResolvePluginOptions {
  /** Directory of the configuration file. */
  configDir: string;
  /** The working directory. @defaultValue process.cwd() */
  cwd?: string;
  /** Further directories to resolve package names from, in order. */
  resolvePaths?: string[];
}

/** True when `use` is a path rather than a package name. */
export function isPathSpecifier(use: string): boolean {
  return use.startsWith("./") || use.startsWith("../") || use === "." || use === ".." || path.isAbsolute(use) || use.startsWith("file:");
}

/**
 * The file a `use:` string points to. Throws `PurgerError("PLUGIN")` naming
 * where it looked.
 */
export function resolvePluginPath(use: string, options: ResolvePluginOptions): string {
  if (isPathSpecifier(use)) {
    const target = use.startsWith("file:") ? fileURLToPath(use) : path.resolve(options.configDir, use);
    const file = resolveFile(target);
    if (file === null) {
      throw new PurgerError(
        "PLUGIN",
        `cannot load ${JSON.stringify(use)}: no file ${target} (tried the extensions .ts, .mts, .js, .mjs, .cjs and an index file)`,
        {
          hint: "a relative `use:` path is taken from the directory of the configuration file",
          details: { use, lookedIn: [target] },
        },
      );
    }
    return file;
  }
  const extra = options.resolvePaths ?? [];
  const local = [options.configDir, options.cwd ?? process.cwd()];
  const bases = unique((isFirstParty(use) ? [...extra, ...local] : [...local, ...extra]).map((dir) => path.resolve(dir)));
  const causes: string[] = [];
  const skipped: string[] = [];
  for (const base of bases) {
    try {
      const file = resolvePackage(use, base, skipped);
      if (file !== null) return file;
    } catch (error) {
      causes.push(error instanceof Error ? error.message : String(error));
    }
  }
  const cause = causes[0] === undefined ? `package ${JSON.stringify(use)} is not installed` : causes[0];
  const passedOver = skipped.length === 0 ? "" : `; passed over, as others can write there: ${unique(skipped).join("; ")}`;
  throw new PurgerError("PLUGIN", `cannot load ${JSON.stringify(use)}: ${cause}; looked in ${bases.join(", ")}${passedOver}`, {
    hint: `install it next to the configuration file (npm install ${packageName(use)}), or give a ./relative path`,
    details: { use, lookedIn: bases, skipped: unique(skipped) },
  });
}

/** Resolve and import a plugin, and check its shape. Throws `PurgerError("PLUGIN")`. */
export async function loadPlugin(use: string, options: ResolvePluginOptions): Promise<AnyPlugin> {
  const file = resolvePluginPath(use, options);
  let module: unknown;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (error) {
    const refusal = typeScriptRefusal(file, error);
    if (refusal !== null) {
      throw new PurgerError("PLUGIN", `cannot load ${JSON.stringify(use)} (${file}): ${refusal}`, {
        hint: `build the plugin to JavaScript (tsc) and point \`use:\` at the .js file or its package; or ${TSX_WAY_OUT}`,
        cause: error,
        details: { use, file },
      });
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new PurgerError("PLUGIN", `cannot load ${JSON.stringify(use)} (${file}): ${message}`, {
      hint: "the module failed while loading; run it on its own (node/tsx) to see the full error",
      cause: error,
      details: { use, file },
    });
  }
  const plugin = pluginOf(module);
  const problems = shapeProblems(plugin);
  if (problems.length > 0) {
    throw new PurgerError("PLUGIN", `${JSON.stringify(use)} does not export a purger plugin: ${problems.join("; ")}`, {
      hint: "a plugin module's default export is definePlugin({ name, version, options, usesRetention, batch?, bin? }) from @purger/core",
      details: { use, file, problems },
    });
  }
  const schemaErrors = pluginSchemaProblems(plugin as AnyPlugin);
  if (schemaErrors.length > 0) {
    const name = (plugin as AnyPlugin).name;
    throw new PurgerError("PLUGIN", `plugin ${name} (${JSON.stringify(use)}) has an invalid JSON Schema: ${schemaErrors.join("; ")}`, {
      hint: `a fault of the plugin, not of the configuration: report it to the authors of ${name} (its schemas are compiled with ajv's strict mode and ajv-formats)`,
      details: { use, file, problems: schemaErrors },
    });
  }
  return plugin as AnyPlugin;
}

/**
 * What is wrong with a value that should be a plugin (empty when nothing).
 * Its options and payload schemas must also compile.
 */
export function pluginShapeProblems(value: unknown): string[] {
  const problems = shapeProblems(value);
  return problems.length > 0 ? problems : pluginSchemaProblems(value as AnyPlugin);
}

function shapeProblems(value: unknown): string[] {
  if (typeof value === "function") {
    return ["its default export is a function; expected the plugin object (call the factory: export default myPlugin())"];
  }
  if (typeof value !== "object" || value === null) return [`expected an object, found ${describeValue(value)}`];
  const plugin = value as Record<string, unknown>;
  const problems: string[] = [];
  const expect = (key: string, ok: boolean, expected: string): void => {
    if (!ok) problems.push(`${key}: expected ${expected}, found ${describeValue(plugin[key])}`);
  };
  expect("name", typeof plugin["name"] === "string" && plugin["name"] !== "", "a non-empty string");
  expect("version", typeof plugin["version"] === "string", "a string");
  expect("options", isObject(plugin["options"]) || typeof plugin["options"] === "boolean", "a JSON Schema object");
  expect(
    "usesRetention",
    typeof plugin["usesRetention"] === "boolean" || typeof plugin["usesRetention"] === "function",
    "true, false or a function of the options",
  );
  for (const hook of ["batch", "prepare", "release", "estimate", "count", "countAll", "check", "describe"]) {
    if (plugin[hook] !== undefined) expect(hook, typeof plugin[hook] === "function", "a function");
  }
  const bin = plugin["bin"];
  if (bin !== undefined) {
    if (!isObject(bin)) {
      expect("bin", false, "a mapping of handler name → { schema, handle }");
    } else {
      for (const [name, handler] of Object.entries(bin)) {
        if (!/^[a-z0-9][a-z0-9_-]*$/.test(name))
          problems.push(`bin.${name}: expected a handler name of lowercase letters, digits, "-" and "_" (kinds are <id>.<handler>)`);
        if (!isObject(handler)) {
          problems.push(`bin.${name}: expected { schema, handle }, found ${describeValue(handler)}`);
          continue;
        }
        if (!isObject(handler["schema"]) && typeof handler["schema"] !== "boolean")
          problems.push(`bin.${name}.schema: expected a JSON Schema object, found ${describeValue(handler["schema"])}`);
        if (typeof handler["handle"] !== "function")
          problems.push(`bin.${name}.handle: expected a function, found ${describeValue(handler["handle"])}`);
        if (handler["validate"] !== undefined && typeof handler["validate"] !== "function")
          problems.push(`bin.${name}.validate: expected a function, found ${describeValue(handler["validate"])}`);
      }
    }
  }
  if (plugin["batch"] === undefined && (bin === undefined || (isObject(bin) && Object.keys(bin).length === 0))) {
    problems.push("it has neither a batch function nor bin handlers, so it can do nothing");
  }
  return problems;
}

/**
 * Why a plugin's options schema or a bin handler's payload schema does not
 * compile under ajv's strict mode (empty when they all do): a misspelt
 * keyword or an unknown format must not be silently ignored.
 */
export function pluginSchemaProblems(plugin: AnyPlugin): string[] {
  const problems: string[] = [];
  try {
    optionsValidator(plugin);
  } catch (error) {
    problems.push(`options: ${schemaErrorMessage(error, plugin.options)}`);
  }
  for (const [name, handler] of Object.entries(plugin.bin ?? {})) {
    try {
      payloadValidator(handler);
    } catch (error) {
      problems.push(`bin.${name}.schema: ${schemaErrorMessage(error, handler.schema)}`);
    }
  }
  return problems;
}

const validators = new WeakMap<object, ValidateFunction>();

/**
 * The compiled validator of a plugin's options (compiled once per schema
 * object). It applies the schema's defaults to the data it validates.
 */
export function optionsValidator(plugin: AnyPlugin): ValidateFunction {
  return compiled(plugin.options, plugin);
}

/** The compiled validator of a bin handler's payload (compiled once per schema object), defaults applied. */
export function payloadValidator(handler: { schema: unknown }): ValidateFunction {
  return compiled(handler.schema, handler);
}

function compiled(schema: unknown, owner: object): ValidateFunction {
  const key = typeof schema === "object" && schema !== null ? schema : owner;
  let validate = validators.get(key);
  if (validate === undefined) {
    // One ajv per schema: third-party schemas may reuse an $id.
    validate = createAjv({ useDefaults: true }).compile(schema as object | boolean);
    validators.set(key, validate);
  }
  return validate;
}

const KNOWN_KEYWORDS = Object.keys(createAjv().RULES.all);

/** ajv's compile error, with the place of an unknown keyword and the keyword it likely misspells. */
function schemaErrorMessage(error: unknown, schema: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /^strict mode: unknown keyword: "(.+)"$/.exec(message);
  if (unknown?.[1] === undefined) return message.replace(/^strict mode: /, "");
  const keyword = unknown[1];
  const at = keywordPath(schema, keyword, "#");
  const suggestion = didYouMean(keyword, KNOWN_KEYWORDS);
  return `unknown keyword "${keyword}"${at === null ? "" : ` at ${at}`}${suggestion === undefined ? "" : `; did you mean "${suggestion}"?`}`;
}

/** Keywords whose value maps names to subschemas (the names are not keywords). */
const SCHEMA_MAPS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependencies", "dependentSchemas"]);
/** Keywords whose value is data, never a schema. */
const DATA_KEYWORDS = new Set(["enum", "const", "default", "examples", "required"]);

/** The JSON pointer of the subschema that holds `keyword`, or null. */
function keywordPath(schema: unknown, keyword: string, at: string): string | null {
  if (Array.isArray(schema)) {
    for (const [index, item] of schema.entries()) {
      const found = keywordPath(item, keyword, `${at}/${index}`);
      if (found !== null) return found;
    }
    return null;
  }
  if (!isObject(schema)) return null;
  if (keyword in schema) return at;
  for (const [key, value] of Object.entries(schema)) {
    if (DATA_KEYWORDS.has(key)) continue;
    if (SCHEMA_MAPS.has(key) && isObject(value)) {
      for (const [name, child] of Object.entries(value)) {
        const found = keywordPath(child, keyword, `${at}/${key}/${name}`);
        if (found !== null) return found;
      }
      continue;
    }
    const found = keywordPath(value, keyword, `${at}/${key}`);
    if (found !== null) return found;
  }
  return null;
}

/** The plugin of an imported module: its default export, or the module itself. */
function pluginOf(module: unknown): unknown {
  if (!isObject(module)) return module;
  let candidate: unknown = "default" in module ? module["default"] : module;
  // A CommonJS module compiled from ESM: { default: { default: plugin } }.
  if (isObject(candidate) && !("name" in candidate) && "default" in candidate) candidate = candidate["default"];
  return candidate;
}

/** An existing file for `target`: as is, with an extension, or a directory's package entry / index. */
function resolveFile(target: string): string | null {
  if (isFile(target)) return target;
  for (const extension of EXTENSIONS) {
    if (isFile(target + extension)) return target + extension;
  }
  if (isDirectory(target)) {
    const fromPackage = packageEntry(target, ".");
    if (fromPackage !== null) return fromPackage;
    for (const extension of EXTENSIONS) {
      const index = path.join(target, `index${extension}`);
      if (isFile(index)) return index;
    }
  }
  return null;
}

/**
 * The file of package specifier `use` as seen from `base` (ESM rules, CommonJS
 * rules as a fallback); null when not found. A node_modules that others can
 * write to is passed over (its reason added to `skipped`).
 */
function resolvePackage(use: string, base: string, skipped: string[]): string | null {
  const name = packageName(use);
  const subpath = use === name ? "." : `.${use.slice(name.length)}`;
  for (let dir = base; ; dir = path.dirname(dir)) {
    const packageDir = path.join(dir, "node_modules", name);
    if (isFile(path.join(packageDir, "package.json"))) {
      const reason = untrustedPackageDir(packageDir);
      if (reason !== null) {
        skipped.push(reason);
      } else {
        const file = packageEntry(packageDir, subpath);
        if (file !== null) return file;
        break;
      }
    }
    if (path.dirname(dir) === dir) break;
  }
  let file: string;
  try {
    // For what the walk above does not see: Yarn Plug'n'Play, NODE_PATH, global folders.
    file = createRequire(path.join(base, "noop.js")).resolve(use);
  } catch (error) {
    if ((error as { code?: string }).code === "MODULE_NOT_FOUND") return null;
    throw error;
  }
  const marker = `${path.sep}node_modules${path.sep}`;
  const at = file.lastIndexOf(marker);
  if (at === -1) return file;
  const reason = untrustedPackageDir(path.join(file.slice(0, at + marker.length), name));
  if (reason === null) return file;
  skipped.push(reason);
  return null;
}

/** Why a package directory `…/node_modules/[@scope/]name` is not to be loaded from, or null. */
function untrustedPackageDir(packageDir: string): string | null {
  const scopeDir = path.dirname(packageDir);
  const nodeModules = path.basename(scopeDir).startsWith("@") ? path.dirname(scopeDir) : scopeDir;
  const chain = [path.dirname(nodeModules), nodeModules, ...(scopeDir === nodeModules ? [] : [scopeDir]), packageDir];
  for (const dir of chain) {
    const reason = untrustedReason(dir);
    if (reason !== null) return reason;
  }
  return null;
}

/** The file a package exposes at `subpath` ("." or "./x"), following `exports` with the import condition, else `main`. */
function packageEntry(packageDir: string, subpath: string): string | null {
  const manifestPath = path.join(packageDir, "package.json");
  if (!isFile(manifestPath)) return null;
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { exports?: unknown; main?: unknown };
  if (manifest.exports !== undefined && manifest.exports !== null) {
    const target = exportTarget(manifest.exports, subpath);
    if (target === null) {
      throw new Error(`package ${packageDir} does not export ${JSON.stringify(subpath)}`);
    }
    return resolveFile(path.join(packageDir, target));
  }
  if (subpath === "." && typeof manifest.main === "string") return resolveFile(path.join(packageDir, manifest.main));
  return resolveFile(path.join(packageDir, subpath === "." ? "index" : subpath));
}

const CONDITIONS = new Set(["import", "node", "default", "module"]);

function exportTarget(exports: unknown, subpath: string): string | null {
  const isSubpathMap = isObject(exports) && Object.keys(exports).some((key) => key.startsWith("."));
  if (!isSubpathMap) return subpath === "." ? conditionalTarget(exports) : null;
  const map = exports as Record<string, unknown>;
  if (subpath in map) return conditionalTarget(map[subpath]);
  for (const [pattern, target] of Object.entries(map)) {
    const star = pattern.indexOf("*");
    if (star === -1) continue;
    const prefix = pattern.slice(0, star);
    const suffix = pattern.slice(star + 1);
    if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= prefix.length + suffix.length) {
      const resolved = conditionalTarget(target);
      return resolved === null ? null : resolved.replace("*", subpath.slice(prefix.length, subpath.length - suffix.length));
    }
  }
  return null;
}

function conditionalTarget(target: unknown): string | null {
  if (typeof target === "string") return target;
  if (Array.isArray(target)) {
    for (const item of target) {
      const resolved = conditionalTarget(item);
      if (resolved !== null) return resolved;
    }
    return null;
  }
  if (isObject(target)) {
    for (const [condition, value] of Object.entries(target)) {
      if (CONDITIONS.has(condition)) {
        const resolved = conditionalTarget(value);
        if (resolved !== null) return resolved;
      }
    }
  }
  return null;
}

const EXTENSIONS = [".ts", ".mts", ".js", ".mjs", ".cjs"];

/** Whether `use` is in the scope the CLI's own plugins are published under. */
function isFirstParty(use: string): boolean {
  return use.startsWith("@purger/");
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageName(use: string): string {
  const parts = use.split("/");
  return use.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? use);
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function isDirectory(dir: string): boolean {
  return existsSync(dir) && statSync(dir).isDirectory();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}
