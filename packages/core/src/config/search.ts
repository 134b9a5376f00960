/**
 * Where the configuration search looks: from the working directory up to the
 * project root — the nearest directory with a package.json or a .git — and
 * only the working directory when no project root is above it, so a search
 * never wanders into /tmp, /home or /. Directories others can write to are
 * passed over (see trust.ts).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { untrustedReason } from "./trust.js";

export interface SearchDirectories {
  /** The directories to look in, nearest first. */
  dirs: string[];
  /** The nearest directory with a package.json or .git, or null when there is none. */
  projectRoot: string | null;
  /** Directories (and, once searched, files) passed over, and why. */
  skipped: { path: string; reason: string }[];
}

const PROJECT_MARKERS = ["package.json", ".git"];

export function searchDirectories(cwd: string): SearchDirectories {
  const chain: string[] = [];
  let projectRoot: string | null = null;
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    chain.push(dir);
    if (PROJECT_MARKERS.some((marker) => existsSync(path.join(dir, marker)))) {
      projectRoot = dir;
      break;
    }
    if (path.dirname(dir) === dir) break;
  }
  const candidates = projectRoot === null ? chain.slice(0, 1) : chain;
  const dirs: string[] = [];
  const skipped: SearchDirectories["skipped"] = [];
  for (const dir of candidates) {
    const reason = untrustedReason(dir);
    if (reason === null) dirs.push(dir);
    else skipped.push({ path: dir, reason });
  }
  return { dirs, projectRoot, skipped };
}
