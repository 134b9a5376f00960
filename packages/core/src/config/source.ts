/**
 * A configuration as read from its file: the data, and where each value
 * stands in the file (YAML keeps source ranges; JSON and JavaScript sources
 * have no positions).
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { renderPath, type ConfigProblem, type PathSegment } from "./errors.js";
import { interpolateDocument, interpolateValue, type InterpolationResult } from "./interpolate.js";
import { aliasProblem, MAX_ALIAS_COUNT } from "./aliases.js";

export interface Position {
  line: number;
  column: number;
}

export interface ConfigSource {
  /** Absolute path of the file, or null for a configuration built in code. */
  file: string | null;
  format: "yaml" | "json" | "js" | "object";
  /** The data after interpolation. */
  data: unknown;
  /**
   * Where the value at `path` stands (`at: "key"`: its key in the parent mapping).
   * A path that does not exist falls back to its nearest existing ancestor, so a
   * missing key names its parent mapping.
   */
  locate(path: readonly PathSegment[], at: "key" | "value"): Position | null;
  /** Problems found while reading (syntax, interpolation). */
  problems: ConfigProblem[];
  /**
   * Values left unchecked because a variable they use is not set, when reading with
   * `deferUnsetVariables` (`purger validate` in CI, where the secrets are not): warnings, not problems.
   */
  deferred: ConfigProblem[];
  interpolation: InterpolationResult;
}

/**
 * Parse YAML text (purger.yaml, .purgerrc — or JSON, which YAML reads too, so
 * that .purgerrc.json gets positions as well), interpolate its values, keep positions.
 */
export function readYamlSource(
  file: string,
  text: string,
  env: Record<string, string | undefined>,
  options: ReadOptions = {},
): ConfigSource {
  const syntax = file.endsWith(".json") ? "JSON" : "YAML";
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true });
  const position = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const problems: ConfigProblem[] = doc.errors.map((error) => {
    const at = position(error.pos[0]);
    return { line: at.line, column: at.column, path: "", message: `invalid ${syntax}: ${yamlMessage(error.message)}` };
  });
  const empty: InterpolationResult = { problems: [], secretPaths: new Set(), interpolated: new Map() };
  if (problems.length > 0) {
    return { file, format: "yaml", data: undefined, locate: () => null, problems, deferred: [], interpolation: empty };
  }

  const interpolation = interpolateDocument(doc, env);
  const locate = (path: readonly PathSegment[], at: "key" | "value"): Position | null => {
    return position(locateRange(doc, path, at) ?? 0);
  };
  const deferred: ConfigProblem[] = [];
  for (const problem of interpolation.problems) {
    const at = problem.node?.range ? position(problem.node.range[0]) : locate(problem.path, "value");
    const found = { line: at?.line ?? null, column: at?.column ?? null, path: renderPath(problem.path), message: problem.message };
    const later = options.deferUnsetVariables ? deferredMessage(found) : null;
    if (later) deferred.push(later);
    else problems.push(found);
  }
  let data: unknown;
  try {
    data = doc.contents === null ? undefined : (doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown);
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error;
    problems.push(aliasProblem(doc, position, error));
    return { file, format: "yaml", data: undefined, locate, problems, deferred, interpolation };
  }
  return { file, format: "yaml", data, locate, problems, deferred, interpolation };
}

/** A JSON or JavaScript configuration (or one built in code): interpolated, without positions. */
export function objectSource(
  file: string | null,
  format: "json" | "js" | "object",
  raw: unknown,
  env: Record<string, string | undefined>,
  options: ReadOptions = {},
): ConfigSource {
  const interpolation = interpolateValue(raw, env);
  const problems: ConfigProblem[] = [];
  const deferred: ConfigProblem[] = [];
  for (const problem of interpolation.problems) {
    const found = { line: null, column: null, path: renderPath(problem.path), message: problem.message };
    const later = options.deferUnsetVariables ? deferredMessage(found) : null;
    if (later) deferred.push(later);
    else problems.push(found);
  }
  return { file, format, data: interpolation.value, locate: () => null, problems, deferred, interpolation };
}

export interface ReadOptions {
  /**
   * An unset `${VAR}` (without a default) leaves its value unchecked and is reported as a warning
   * instead of an error: `purger validate` in a CI job that has no secrets.
   * @defaultValue false
   */
  deferUnsetVariables?: boolean;
}

/** The warning for a value whose variable is not set, or null when the problem is another one. */
function deferredMessage(problem: ConfigProblem): ConfigProblem | null {
  const unset = /^environment variable (\w+) is not set/.exec(problem.message);
  if (!unset) return null;
  return { ...problem, message: `not checked: environment variable ${unset[1]} is not set here` };
}

/** Offset of the node at `path` (or of its key), else of the nearest ancestor that exists. */
function locateRange(doc: Document, path: readonly PathSegment[], at: "key" | "value"): number | null {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (let index = 0; index < path.length; index++) {
    const segment = path[index];
    node = resolveAlias(doc, node);
    const last = index === path.length - 1;
    if (isMap(node)) {
      const pair = findPair(doc, node, String(segment));
      if (pair === undefined) return offset;
      if (last && at === "key") return rangeStart(pair.key) ?? offset;
      // `key:` with no value: name the key.
      const valueStart = rangeStart(pair.value);
      offset = valueStart !== null && !isEmptyScalar(pair.value) ? valueStart : (rangeStart(pair.key) ?? offset);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment];
      if (item === undefined) return offset;
      offset = rangeStart(item) ?? offset;
      node = item;
    } else {
      return offset;
    }
  }
  return offset;
}

function findPair(doc: Document, map: unknown, key: string): { key: unknown; value: unknown } | undefined {
  if (!isMap(map)) return undefined;
  for (const pair of map.items) {
    if (!isPair(pair)) continue;
    const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (name === key) return pair;
  }
  // Merge keys (`<<: *defaults`): the value stands in the merged mapping.
  for (const pair of map.items) {
    if (isPair(pair) && isScalar(pair.key) && (pair.key.source === "<<" || pair.key.value === "<<")) {
      const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
      for (const source of sources) {
        const found = findPair(doc, resolveAlias(doc, source), key);
        if (found !== undefined) return found;
      }
    }
  }
  return undefined;
}

function resolveAlias(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function rangeStart(node: unknown): number | null {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : null;
}

function isEmptyScalar(node: unknown): boolean {
  return isScalar(node) && node.value === null && node.source === "";
}

function yamlMessage(message: string): string {
  return message.replace(/\.$/, "").replace(/^\w/, (first) => first.toLowerCase());
}
