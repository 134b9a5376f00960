/**
 * A concurrency limit for a plugin's calls to an external system (delete
 * 1000 objects, 16 at a time). This is p-limit, re-exported so that every
 * plugin uses the one copy core already installs and needs no dependency of
 * its own for it.
 *
 * @example
 * const limit = pLimit(options.concurrency);
 * await Promise.all(keys.map((key) => limit(() => deleteObject(key))));
 */
export { default as pLimit, default as limit, limitFunction } from "p-limit";
export type { LimitFunction } from "p-limit";
