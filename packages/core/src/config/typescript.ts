/**
 * Node.js refusing a TypeScript module. The installed CLI runs its built
 * JavaScript and registers no TypeScript loader (only a source checkout of
 * purger runs through tsx), so a `use: ./plugin.ts` or a `purger.config.ts`
 * fails in `import()` with a code and a message that name neither cause nor
 * remedy. Covered by packages/cli/test/installed.test.ts.
 */
import path from "node:path";

const TYPESCRIPT_EXTENSIONS = new Set([".ts", ".mts", ".cts", ".tsx"]);

/** The error codes of Node's loader for a TypeScript file it will not run. */
const REFUSALS: Record<string, string> = {
  // Node 20, and later versions without type stripping.
  ERR_UNKNOWN_FILE_EXTENSION: "this Node.js loads only JavaScript (no TypeScript loader is registered)",
  // Node ≥ 22.6 strips types, but never under node_modules.
  ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING: "Node.js does not strip types from files under node_modules",
  // Stripping cannot run what needs a transform (enums, namespaces, parameter properties).
  ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX: "Node.js's type stripping cannot run syntax that needs a transform",
};

/** The way out that works for either kind of module. */
export const TSX_WAY_OUT =
  "install tsx next to purger (npm install tsx) and run it through tsx: node --import tsx node_modules/.bin/purger …";

/**
 * "it is TypeScript, and …" when `error` is Node refusing to import `file`
 * because it is TypeScript; null for any other failure (a syntax error, a
 * missing dependency, a JavaScript module importing a `.ts` one).
 */
export function typeScriptRefusal(file: string, error: unknown): string | null {
  if (!TYPESCRIPT_EXTENSIONS.has(path.extname(file))) return null;
  const code = (error as { code?: unknown } | null)?.code;
  const why = typeof code === "string" ? REFUSALS[code] : undefined;
  if (why === undefined) return null;
  // The refused file must be this one, not a `.ts` file it imports.
  const message = error instanceof Error ? error.message : "";
  if (code === "ERR_UNKNOWN_FILE_EXTENSION" && !message.includes(file)) return null;
  return `it is TypeScript, and ${why}`;
}
