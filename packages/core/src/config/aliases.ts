/**
 * YAML anchors and aliases let a small file expand to a huge value (the "billion laughs" file:
 * anchors of lists of aliases of anchors …). The conversion refuses past a limit; this names the
 * place in the file where the expansion got out of hand.
 */
import { isAlias, isMap, isPair, isSeq, type Alias, type Document } from "yaml";
import type { ConfigProblem } from "./errors.js";

/** Values aliases may expand to: far above what anchors for reuse need, far below what exhausts memory. */
export const MAX_ALIAS_COUNT = 1_000;

/** The problem of a file whose aliases expand too much (or that uses an alias before its anchor). */
export function aliasProblem(
  doc: Document,
  position: (offset: number) => { line: number; column: number },
  error: ReferenceError,
): ConfigProblem {
  const culprit = /^Excessive alias count/.test(error.message) ? excessiveAlias(doc) : undefined;
  const at = position(culprit?.alias.range?.[0] ?? 0);
  const message =
    culprit === undefined
      ? `invalid YAML: ${error.message.replace(/^\w/, (c) => c.toLowerCase())}`
      : `invalid YAML: aliases expand to more than ${MAX_ALIAS_COUNT} values${Number.isNaN(culprit.expanded) ? "" : ` (${culprit.expanded} at *${culprit.alias.source})`}; anchors nested to multiply (a "billion laughs" file) are refused`;
  return { line: at.line, column: at.column, path: "", message };
}

/**
 * The first alias, in document order, from which the values expanded by aliases pass
 * `MAX_ALIAS_COUNT` (its anchor's size times its uses so far), with that count; or the first
 * alias of the file when no single one does.
 */
function excessiveAlias(doc: Document): { alias: Alias; expanded: number } | undefined {
  const sizes = new Map<string, number>();
  const uses = new Map<string, number>();
  let first: Alias | undefined;
  let found: { alias: Alias; expanded: number } | undefined;
  const size = (node: unknown): number => {
    if (isAlias(node)) {
      first ??= node;
      const n = sizes.get(node.source) ?? 1;
      const used = (uses.get(node.source) ?? 0) + 1;
      uses.set(node.source, used);
      if (found === undefined && n * used > MAX_ALIAS_COUNT) found = { alias: node, expanded: n * used };
      return n;
    }
    let n = 1;
    if (isPair(node)) n = size(node.key) + size(node.value);
    else if (isMap(node) || isSeq(node)) for (const item of node.items) n = Math.min(Number.MAX_SAFE_INTEGER, n + size(item));
    const anchor = (node as { anchor?: string } | null)?.anchor;
    if (anchor !== undefined) sizes.set(anchor, n);
    return n;
  };
  size(doc.contents);
  return found ?? (first === undefined ? undefined : { alias: first, expanded: NaN });
}
