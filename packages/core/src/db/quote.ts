/** Quote an SQL identifier (double quotes doubled). The one place identifiers become SQL text. */
export function quoteIdent(name: string): string {
  if (name.includes("\0")) throw new Error("identifier contains a NUL byte");
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quote `schema.name` (each part quoted); `name` alone stays unqualified. */
export function quoteQualified(schema: string | null, name: string): string {
  return schema === null ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`;
}
