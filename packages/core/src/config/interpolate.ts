/**
 * Environment variables in configuration values: `${VAR}`, `${VAR:-default}`
 * (the default when VAR is unset or empty; it may itself contain `${…}`), and
 * `$${` for a literal `${`. Interpolation works on string values, never on the
 * raw text, so a value can never inject YAML structure and every node keeps
 * its position for error messages.
 */
import { isMap, isPair, isScalar, isSeq, type Document, type Node } from "yaml";
import type { ErrorObject } from "ajv";
import { pointerToPath, renderPath, type PathSegment } from "./errors.js";

/** A value that could not be interpolated. */
export interface InterpolationProblem {
  path: PathSegment[];
  /** What is wrong, e.g. `environment variable DATABASE_URL is not set; …`. */
  message: string;
  /** The YAML node (for its position), when interpolating a document. */
  node?: Node;
}

export interface InterpolationResult {
  problems: InterpolationProblem[];
  /** Paths (rendered, e.g. `database.url`) whose value came from the environment: never echoed in messages. */
  secretPaths: Set<string>;
  /**
   * Every value that interpolation changed, by rendered path. Validation turns
   * such a string into the number or boolean the schema expects
   * (`concurrency: ${CONCURRENCY:-4}`), and only such a string.
   */
  interpolated: Map<string, PathSegment[]>;
}

type Env = Record<string, string | undefined>;

/**
 * Interpolate one string. Returns the value and whether any variable's value
 * (not a default) went into it; unset variables and syntax errors are
 * reported in `errors`.
 */
export function interpolateString(text: string, env: Env): { value: string; fromEnv: boolean; errors: string[] } {
  const errors: string[] = [];
  const state = { fromEnv: false };
  const value = expand(text, env, errors, state);
  return { value, fromEnv: state.fromEnv, errors };
}

/** Interpolate every scalar string value of a YAML document in place (keys are left alone). */
export function interpolateDocument(doc: Document, env: Env): InterpolationResult {
  const result: InterpolationResult = { problems: [], secretPaths: new Set(), interpolated: new Map() };
  const walk = (node: unknown, path: PathSegment[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => walk(item, [...path, index]));
    } else if (isScalar(node) && typeof node.value === "string" && node.value.includes("$")) {
      const { value, fromEnv, errors } = interpolateString(node.value, env);
      for (const message of errors) result.problems.push({ path, message, node });
      if (errors.length > 0) return;
      if (fromEnv) result.secretPaths.add(renderPath(path));
      if (value !== node.value) result.interpolated.set(renderPath(path), path);
      node.value = value;
    }
  };
  walk(doc.contents, []);
  return result;
}

/**
 * Interpolate the string values of a plain object tree (JSON and JavaScript
 * configuration files); returns a new tree, the input is left untouched.
 */
export function interpolateValue(data: unknown, env: Env): { value: unknown } & InterpolationResult {
  const result: InterpolationResult = { problems: [], secretPaths: new Set(), interpolated: new Map() };
  const walk = (value: unknown, path: PathSegment[]): unknown => {
    if (typeof value === "string") {
      if (!value.includes("$")) return value;
      const expanded = interpolateString(value, env);
      for (const message of expanded.errors) result.problems.push({ path, message });
      if (expanded.fromEnv) result.secretPaths.add(renderPath(path));
      if (expanded.value !== value) result.interpolated.set(renderPath(path), path);
      return expanded.value;
    }
    if (Array.isArray(value)) return value.map((item, index) => walk(item, [...path, index]));
    if (isPlainObject(value)) {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, walk(item, [...path, key])]));
    }
    return value;
  };
  return { value: walk(data, []), ...result };
}

/**
 * Validate `data`; where the schema wants a number or a boolean and finds the
 * string an `${VAR}` produced (`concurrency: ${CONCURRENCY:-4}`), convert it
 * and validate again. Strings written as such are never converted.
 */
export function validateInterpolated(
  validate: ((data: unknown) => boolean) & { errors?: ErrorObject[] | null },
  data: unknown,
  basePath: PathSegment[],
  interpolation: InterpolationResult,
): void {
  for (let round = 0; round < 3; round++) {
    if (validate(data)) return;
    let changed = false;
    for (const error of validate.errors ?? []) {
      if (error.keyword !== "type" || typeof error.data !== "string") continue;
      const at = pointerToPath(error.instancePath);
      if (!interpolation.interpolated.has(renderPath([...basePath, ...at]))) continue;
      const converted = convert(error.data, String((error.params as { type: unknown }).type));
      if (converted !== undefined) changed = setAt(data, at, converted) || changed;
    }
    if (!changed) return;
  }
}

function convert(value: string, type: string): number | boolean | undefined {
  if ((type.includes("integer") || type.includes("number")) && /^-?\d+(?:\.\d+)?$/.test(value.trim())) {
    const number = Number(value);
    return type.includes("number") || Number.isInteger(number) ? number : undefined;
  }
  if (type.includes("boolean") && (value === "true" || value === "false")) return value === "true";
  return undefined;
}

function setAt(data: unknown, at: PathSegment[], value: unknown): boolean {
  let node = data;
  for (const segment of at.slice(0, -1)) node = (node as Record<string | number, unknown> | undefined)?.[segment];
  const last = at[at.length - 1];
  if (last === undefined || typeof node !== "object" || node === null) return false;
  (node as Record<string | number, unknown>)[last] = value;
  return true;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function expand(text: string, env: Env, errors: string[], state: { fromEnv: boolean }): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("$${", i)) {
      out += "${";
      i += 3;
      continue;
    }
    if (!text.startsWith("${", i)) {
      out += text[i];
      i += 1;
      continue;
    }
    const end = closingBrace(text, i + 2);
    if (end === -1) {
      errors.push(`unterminated \${ in ${JSON.stringify(text)}; expected \${NAME} or \${NAME:-default} (write $\${ for a literal \${)`);
      return out;
    }
    const inner = text.slice(i + 2, end);
    const separator = inner.indexOf(":-");
    const name = separator === -1 ? inner : inner.slice(0, separator);
    if (!NAME.test(name)) {
      errors.push(
        `invalid variable reference \${${inner}}; expected \${NAME} or \${NAME:-default} with NAME made of letters, digits and _`,
      );
    } else {
      const value = env[name];
      if (separator !== -1 && (value === undefined || value === "")) {
        out += expand(inner.slice(separator + 2), env, errors, state);
      } else if (value === undefined) {
        errors.push(`environment variable ${name} is not set; set it, or give a default: \${${name}:-value}`);
      } else {
        if (value !== "") state.fromEnv = true;
        out += value;
      }
    }
    i = end + 1;
  }
  return out;
}

/** Index of the `}` closing a `${` whose body starts at `from` (nested `${…}` allowed), or -1. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text.startsWith("${", j)) {
      depth += 1;
      j += 1;
    } else if (text[j] === "}") {
      depth -= 1;
      if (depth === 0) return j;
    }
  }
  return -1;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
