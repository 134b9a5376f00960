/** Quote an SQL identifier (double quotes doubled). The one place identifiers become SQL text. */
export function quoteIdent(name: string): string {
  if (name.includes("\0")) throw new Error("identifier contains a NUL byte");
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quote `schema.name` (each part quoted); `name` alone stays unqualified. */
export function quoteQualified(schema: string | null, name: string): string {
  return schema === null ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * Split a table name from config, `name` or `schema.name`. A part may be
 * double-quoted as in SQL (quotes doubled inside), which is how a dot becomes
 * part of a name; an unquoted part is taken exactly as written (no case
 * folding: the catalog decides). Null when malformed.
 */
export function parseQualifiedName(text: string): { schema: string | null; name: string } | null {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = "";
    if (text[i] === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= text.length) return null;
        if (text[j] === '"') {
          if (text[j + 1] === '"') {
            part += '"';
            j += 2;
            continue;
          }
          break;
        }
        part += text[j];
        j += 1;
      }
      i = j + 1;
      if (i < text.length && text[i] !== ".") return null;
    } else {
      const dot = text.indexOf(".", i);
      const end = dot === -1 ? text.length : dot;
      part = text.slice(i, end);
      i = end;
    }
    if (part === "") return null;
    parts.push(part);
    if (i >= text.length) break;
    i += 1; // the dot
  }
  if (parts.length === 1) return { schema: null, name: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, name: parts[1]! };
  return null;
}
