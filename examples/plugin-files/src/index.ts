/**
 * purger-plugin-files: what a third party writes to clean up something purger
 * has no first-party plugin for — here, files older than the retention window
 * under one directory (spool files, exports, temporary uploads). It uses only
 * `@purger/core`'s public API.
 */
import { lstat, readdir, rm } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { definePlugin, defineSchema, PurgerError, type TypedSchema } from "@purger/core";

export interface FilesOptions {
  /** Directory to clean (relative paths resolve from the purger.yaml's directory). */
  dir: string;
  /**
   * Only names ending with one of these suffixes qualify.
   * @defaultValue [] (every file)
   */
  suffixes: string[];
}

// Declared as TypedSchema<FilesOptions>: the compiler checks that the schema accepts exactly FilesOptions.
const schema: TypedSchema<FilesOptions> = defineSchema({
  type: "object",
  properties: {
    dir: { type: "string", minLength: 1 },
    suffixes: { type: "array", items: { type: "string", minLength: 1 }, default: [] },
  },
  required: ["dir"],
  additionalProperties: false,
});

interface State {
  root: string;
}

interface Candidate {
  name: string;
  mtimeMs: number;
}

/** Files directly under `root` that qualify (regular files, older than the cutoff, matching suffix), oldest first. */
async function candidates(root: string, options: FilesOptions, cutoff: Date): Promise<Candidate[]> {
  const names = await readdir(root);
  const found: Candidate[] = [];
  for (const name of names) {
    if (options.suffixes.length > 0 && !options.suffixes.some((s) => name.endsWith(s))) continue;
    const stat = await lstat(join(root, name)).catch(() => null);
    // Never follow symlinks or descend: a link could point outside the directory.
    if (!stat?.isFile()) continue;
    if (stat.mtimeMs < cutoff.getTime()) found.push({ name, mtimeMs: stat.mtimeMs });
  }
  return found.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name));
}

export default definePlugin({
  name: "purger-plugin-files",
  version: "1.0.0",
  options: schema,
  usesRetention: true,
  async prepare(ctx): Promise<State> {
    const root = resolve(ctx.entry.configDir, ctx.options.dir);
    const stat = await lstat(root).catch(() => null);
    if (!stat?.isDirectory()) {
      throw new PurgerError("TARGET", `directory "${root}" does not exist`, { hint: `check options.dir of entry "${ctx.entry.id}"` });
    }
    return { root };
  },
  async batch(ctx) {
    // The listing is re-read each batch: files deleted by an earlier batch are gone from it, so no cursor is needed.
    const batch = (await candidates(ctx.state.root, ctx.options, ctx.cutoff)).slice(0, ctx.batchSize);
    if (!ctx.dryRun) {
      for (const file of batch) await rm(join(ctx.state.root, file.name), { force: true });
    }
    return {
      processed: batch.length,
      cursor: null,
      // A dry run deletes nothing, so it would see the same files again: one batch of at most batchSize tells enough.
      done: ctx.dryRun || batch.length < ctx.batchSize,
      sample: batch.slice(0, 5).map((f) => f.name),
    };
  },
  async estimate(ctx) {
    return (await candidates(ctx.state.root, ctx.options, ctx.cutoff)).length;
  },
  async count(ctx, limit) {
    return Math.min(limit, (await candidates(ctx.state.root, ctx.options, ctx.cutoff)).length);
  },
  async check(ctx) {
    const names = await readdir(ctx.state.root);
    return [{ level: "ok", message: `${ctx.state.root}: ${names.length} entries` }];
  },
  describe(options) {
    return `${options.dir}/*${options.suffixes.length > 0 ? `{${options.suffixes.join(",")}}` : ""}`;
  },
  bin: {
    /** `<id>.file { name }`: delete one file of the directory now, whatever its age. */
    file: {
      schema: defineSchema({
        type: "object",
        properties: { name: { type: "string", minLength: 1 } },
        required: ["name"],
        additionalProperties: false,
      }),
      validate(payload) {
        return payload.name.includes("/") || payload.name.includes("\\") || payload.name === ".." || payload.name === "."
          ? "name must be a file name inside the directory, not a path"
          : null;
      },
      async handle(ctx, payload) {
        const target = resolve(ctx.state.root, payload.name);
        const rel = relative(ctx.state.root, target);
        if (rel.startsWith("..") || isAbsolute(rel) || rel.includes(sep))
          throw new PurgerError("PAYLOAD", `"${payload.name}" is outside ${ctx.state.root}`);
        const stat = await lstat(target).catch(() => null);
        if (stat && !stat.isFile()) throw new PurgerError("PAYLOAD", `"${payload.name}" is not a regular file`);
        await rm(target, { force: true });
        return { processed: stat ? 1 : 0 };
      },
    },
  },
});
