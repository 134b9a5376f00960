/**
 * Which directories and files purger takes configuration and plugin code
 * from. Anything another user can write to may hold a planted
 * `purger.config.mjs` or `node_modules/@purger/*`, so it is passed over: a
 * group- or world-writable directory, whether or not it has the sticky bit
 * (the bit only stops others deleting our files; they can still create new
 * ones, which is all a planted file needs — /tmp is the usual case).
 * Tests: test/config.test.ts, "R14: a hostile environment".
 */
import { statSync } from "node:fs";

/** Why `target` must not be read code or configuration from, or null when it may (also when it does not exist). */
export function untrustedReason(target: string): string | null {
  // Windows reports every file as writable by all; its ACLs say nothing through `mode`.
  if (process.platform === "win32") return null;
  let mode: number;
  try {
    mode = statSync(target).mode;
  } catch {
    return null;
  }
  const permissions = `mode ${(mode & 0o7777).toString(8).padStart(4, "0")}`;
  if ((mode & 0o002) !== 0) return `${target} is writable by every user (${permissions})`;
  if ((mode & 0o020) !== 0) return `${target} is writable by its group (${permissions})`;
  return null;
}
