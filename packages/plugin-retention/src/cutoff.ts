/**
 * The cutoff as a value of the clock column's own type, so that
 * `column < $cutoff` compares like with like and its index serves the scan.
 */
import type { ColumnInfo } from "@purger/core";
import type { ColumnFormat } from "./options.js";

const INTEGER_TYPES = new Set(["int2", "int4", "int8"]);
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** The parameter value of the cutoff for `column < $cutoff`. */
export function cutoffValue(format: ColumnFormat, clock: ColumnInfo, cutoff: Date): string {
  const ms = cutoff.getTime();
  switch (format) {
    case "timestamp":
      return cutoff.toISOString();
    case "epoch":
      // An integer second s is older than the cutoff when s < ms/1000, i.e. s < ceil(ms/1000).
      return INTEGER_TYPES.has(clock.type.base) ? String(Math.ceil(ms / 1000)) : String(ms / 1000);
    case "epochMs":
      return String(ms);
    case "ulid":
    case "uuidv7":
      if (clock.type.base === "uuid" || format === "uuidv7") return uuidBoundary(ms);
      return ulidBoundary(ms);
  }
}

/**
 * The smallest UUID whose first 48 bits are `ms` (a UUIDv7, or a ULID stored
 * in a uuid column): every id generated before `ms` sorts below it, every id
 * generated at or after `ms` sorts at or above it.
 */
export function uuidBoundary(ms: number): string {
  const hex = timeBits(ms).toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

/** The smallest canonical (upper-case Crockford base32) ULID whose time is `ms`. */
export function ulidBoundary(ms: number): string {
  let time = timeBits(ms);
  let text = "";
  for (let i = 0; i < 10; i += 1) {
    text = CROCKFORD[time % 32]! + text;
    time = Math.floor(time / 32);
  }
  return text + "0".repeat(16);
}

function timeBits(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 0) return 0;
  return Math.min(ms, 2 ** 48 - 1);
}
