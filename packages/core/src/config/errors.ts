/**
 * Configuration problems and how they read:
 * `purger.yaml:14:7 plugins[2].options.colum: unknown key; did you mean "column"?`
 * — the place, the path, what is wrong, what was expected and what was found.
 * All problems of a file are collected and thrown as one `PurgerError`.
 */
import type { ErrorObject } from "ajv";
import { PurgerError } from "../errors.js";

export type PathSegment = string | number;

/** One problem of a configuration file. */
export interface ConfigProblem {
  /** 1-based line of the offending node; null when the format has no positions (JSON, JavaScript). */
  line: number | null;
  column: number | null;
  /** `plugins[2].options.column`; empty for the whole file. */
  path: string;
  /** What is wrong, what was expected, what was found. */
  message: string;
  /** What the message names instead of the bare path, e.g. `plugins[1] (id "foo")`. */
  subject?: string;
  /** "PLUGIN" when a plugin could not be loaded or has an invalid shape. */
  code?: "CONFIG" | "PLUGIN";
  /** The remedy the loader gave for this problem (a TypeScript plugin, a package not installed…). */
  hint?: string;
}

/** A problem found by a schema, before it is given a position. */
export interface PathProblem {
  path: PathSegment[];
  /** Which position names it: a mapping key (unknown keys) or the value. */
  at: "key" | "value";
  message: string;
}

/** `plugins[2].options.column`; keys that are not identifiers are quoted: `where["a.b"]`. */
export function renderPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** One line of a configuration error. */
export function formatProblem(displayFile: string, problem: ConfigProblem): string {
  const place = problem.line === null ? displayFile : `${displayFile}:${problem.line}:${problem.column ?? 1}`;
  const subject = problem.subject ?? problem.path;
  return subject === "" ? `${place} ${problem.message}` : `${place} ${subject}: ${problem.message}`;
}

/**
 * The error for a file's problems: code PLUGIN when every problem is about
 * loading a plugin, CONFIG otherwise; one problem per line, in file order.
 */
export function configError(options: { file: string | null; displayFile: string; problems: ConfigProblem[]; hint?: string }): PurgerError {
  const problems = sortProblems(options.problems);
  const code = problems.every((problem) => problem.code === "PLUGIN") ? "PLUGIN" : "CONFIG";
  return new PurgerError(code, problems.map((problem) => formatProblem(options.displayFile, problem)).join("\n"), {
    hint: options.hint ?? hintFor(problems),
    details: {
      file: options.file,
      problems: problems.map(({ line, column, path, message }) => ({ line, column, path, message })),
    },
  });
}

/** Whether a value may be echoed: no when it came from the environment, or its key holds secrets. */
export type Secrecy = false | "env" | "secret";

/** How a found value reads in a message: `"7 days"`, `12`, `a list`, `a mapping`, `an empty value`. */
export function describeValue(value: unknown, secret: Secrecy = false): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (value === "") return "an empty string";
  if (secret === "env") return "a value from the environment (not shown)";
  if (secret === "secret") return "a value that is not shown (it may hold a secret)";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "function") return "a function";
  return String(value);
}

/** The candidate closest to `word` (case-insensitive match first), if close enough to be a typo. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate.toLowerCase() === word.toLowerCase()) return candidate;
    const distance = levenshtein(word.toLowerCase(), candidate.toLowerCase());
    const allowed = Math.max(1, Math.floor(Math.max(word.length, candidate.length) / 3));
    if (distance <= allowed && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `unknown key; did you mean "column"?` or `unknown key; expected one of: a, b, c`. */
export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const suggestion = didYouMean(key, allowed);
  if (suggestion !== undefined) return `unknown key; did you mean "${suggestion}"?`;
  if (allowed.length === 0) return "unknown key; expected no keys here";
  return `unknown key; expected one of: ${allowed.join(", ")}`;
}

export function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

export interface AjvProblemOptions {
  /** Prepended to every instance path (`["plugins", 2, "options"]` for a plugin's options). */
  basePath?: PathSegment[];
  /**
   * What a value of a named `$defs` entry looks like. Every error raised inside
   * such a definition collapses into one `expected <text>, found <value>`.
   */
  expectedByDef?: Record<string, string>;
  /** Which values must not be echoed. */
  isSecret?: (path: PathSegment[]) => Secrecy;
}

/**
 * Turn ajv errors (compiled with `allErrors` and `verbose`) into problems that
 * say what was expected and found. Alternatives (`anyOf`/`oneOf`) become one
 * message unless one alternative clearly matched better (errors deeper in the
 * value), in which case that alternative's errors are reported.
 */
export function ajvProblems(errors: readonly ErrorObject[], options: AjvProblemOptions = {}): PathProblem[] {
  const basePath = options.basePath ?? [];
  const problems: PathProblem[] = [];
  const seen = new Set<string>();
  const push = (problem: PathProblem): void => {
    const key = `${renderPath(problem.path)}\u0000${problem.message}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push(problem);
  };
  const found = (error: ErrorObject): string => {
    const path = [...basePath, ...pointerToPath(error.instancePath)];
    return describeValue(error.data, options.isSecret?.(path) ?? false);
  };

  const visit = (list: readonly ErrorObject[]): void => {
    const consumed = new Set<ErrorObject>();
    const collapsed = new Set<string>();

    /** Errors inside a named definition with an `expected` text collapse into one message per value. */
    const collapse = (error: ErrorObject): boolean => {
      const def = defName(error.schemaPath);
      const expected = def === undefined ? undefined : options.expectedByDef?.[def];
      if (expected === undefined || isStructural(error)) return false;
      consumed.add(error);
      const key = `${error.instancePath}\u0000${def}`;
      if (!collapsed.has(key)) {
        collapsed.add(key);
        push({
          path: [...basePath, ...pointerToPath(error.instancePath)],
          at: "value",
          message: `expected ${expected}, found ${found(error)}`,
        });
      }
      return true;
    };

    // Outer alternatives first, so that they own the errors of nested ones.
    const unions = list
      .filter((error) => error.keyword === "anyOf" || error.keyword === "oneOf")
      .sort((a, b) => a.instancePath.length - b.instancePath.length || a.schemaPath.length - b.schemaPath.length);
    for (const union of unions) {
      if (consumed.has(union)) continue;
      const branches = list.filter(
        (other) =>
          other !== union &&
          !consumed.has(other) &&
          other.schemaPath.startsWith(`${union.schemaPath}/`) &&
          isWithin(union.instancePath, other.instancePath),
      );
      if (collapse(union)) {
        for (const branch of branches) consumed.add(branch);
        continue;
      }
      consumed.add(union);
      for (const branch of branches) consumed.add(branch);
      const path = [...basePath, ...pointerToPath(union.instancePath)];
      if (branches.length === 0) {
        push({ path, at: "value", message: `expected exactly one alternative to match, found ${found(union)} matching several` });
        continue;
      }
      const deeper = branches.filter((branch) => branch.instancePath !== union.instancePath);
      if (deeper.length > 0) {
        // The value has the shape of one alternative: report what is wrong inside it.
        const best = new Set(deeper.map((branch) => branchIndex(union.schemaPath, branch.schemaPath)));
        visit(branches.filter((branch) => best.has(branchIndex(union.schemaPath, branch.schemaPath))));
        continue;
      }
      const alternatives = [...new Set(branches.map((branch) => expectation(branch)))];
      push({ path, at: "value", message: `expected ${alternatives.join(" or ")}, found ${found(union)}` });
    }

    for (const error of list) {
      if (consumed.has(error) || collapse(error)) continue;
      const path = [...basePath, ...pointerToPath(error.instancePath)];
      switch (error.keyword) {
        case "additionalProperties": {
          const key = String(error.params["additionalProperty"]);
          const properties = (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
          push({ path: [...path, key], at: "key", message: unknownKeyMessage(key, Object.keys(properties)) });
          break;
        }
        case "required":
          push({ path, at: "value", message: `missing required key "${String(error.params["missingProperty"])}"` });
          break;
        case "if":
          break;
        default:
          push({ path, at: "value", message: `expected ${expectation(error)}, found ${found(error)}${suggestion(error)}` });
      }
    }
  };
  visit(errors);
  return problems;
}

/** `/plugins/2/options/column` → `["plugins", 2, "options", "column"]`. */
export function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((segment) => (/^(0|[1-9]\d*)$/.test(segment) ? Number(segment) : segment));
}

/** What a failing keyword expected, as a noun phrase. */
function expectation(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "type": {
      const types = Array.isArray(params["type"]) ? (params["type"] as string[]) : String(params["type"]).split(",");
      return types.map((type) => TYPE_NAMES[type] ?? type).join(" or ");
    }
    case "enum":
      return `one of ${(params["allowedValues"] as unknown[]).map((value) => JSON.stringify(value)).join(", ")}`;
    case "const":
      return JSON.stringify(params["allowedValue"]);
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return `a number ${String(params["comparison"])} ${String(params["limit"])}`;
    case "minLength":
      return params["limit"] === 1 ? "a non-empty string" : `a string of at least ${String(params["limit"])} characters`;
    case "maxLength":
      return `a string of at most ${String(params["limit"])} characters`;
    case "minItems":
      return params["limit"] === 1 ? "a non-empty list" : `a list of at least ${String(params["limit"])} items`;
    case "maxItems":
      return `a list of at most ${String(params["limit"])} items`;
    case "minProperties":
      return params["limit"] === 1 ? "a non-empty mapping" : `a mapping of at least ${String(params["limit"])} keys`;
    case "pattern":
      return `a string matching /${String(params["pattern"])}/`;
    case "format":
      // purger's own `regex` format (blob's allowPrefix) reads better in words.
      return params["format"] === "regex" ? "a valid regular expression" : `a string in the ${String(params["format"])} format`;
    case "uniqueItems":
      return `a list without duplicates (items ${String(params["j"])} and ${String(params["i"])} are equal)`;
    case "multipleOf":
      return `a multiple of ${String(params["multipleOf"])}`;
    case "required":
      return `a mapping with the key "${String(params["missingProperty"])}"`;
    case "additionalProperties":
      return `a mapping without the key "${String(params["additionalProperty"])}"`;
    default:
      return `a value that ${error.message ?? `passes "${error.keyword}"`}`;
  }
}

function suggestion(error: ErrorObject): string {
  if (error.keyword !== "enum" || typeof error.data !== "string") return "";
  const allowed = (error.params as { allowedValues: unknown[] }).allowedValues.filter(
    (value): value is string => typeof value === "string",
  );
  const match = didYouMean(error.data, allowed);
  return match === undefined ? "" : `; did you mean "${match}"?`;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "true or false",
  object: "a mapping",
  array: "a list",
  null: "an empty value",
};

/** Errors about a mapping's keys are reported as such, even inside a named definition. */
function isStructural(error: ErrorObject): boolean {
  return error.keyword === "additionalProperties" || error.keyword === "required";
}

function defName(schemaPath: string): string | undefined {
  return /^#\/(?:\$defs|definitions)\/([^/]+)\//.exec(schemaPath)?.[1];
}

function branchIndex(unionPath: string, branchPath: string): string {
  return branchPath.slice(unionPath.length + 1).split("/")[0] ?? "";
}

function isWithin(parent: string, child: string): boolean {
  return child === parent || child.startsWith(`${parent}/`);
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort(
      (a, b) =>
        (a.problem.line ?? Infinity) - (b.problem.line ?? Infinity) ||
        (a.problem.column ?? 0) - (b.problem.column ?? 0) ||
        a.index - b.index,
    )
    .map(({ problem }) => problem);
}

function hintFor(problems: ConfigProblem[]): string {
  if (problems.every((problem) => problem.message.startsWith("environment variable "))) {
    return "set the environment variables, or give defaults: ${NAME:-value}";
  }
  // The loader's own remedies are more precise than any generic one, when every problem has one.
  const own = [...new Set(problems.map((problem) => problem.hint))];
  if (problems.length > 0 && own.every((hint) => hint !== undefined)) return own.join("; ");
  if (problems.some((problem) => problem.code === "PLUGIN")) {
    return "`use:` takes an installed package name (install it next to purger.yaml) or a ./relative path to a module whose default export is definePlugin(...)";
  }
  return "fix the file, then check it with `purger validate`; `purger schema` prints a JSON Schema your editor can check purger.yaml with as you type";
}
