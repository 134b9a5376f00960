/**
 * Durations in purger.yaml: a number and a unit (`250ms`, `90s`, `15m`, `1h`,
 * `7d`, `2w`, or several: `1h30m`) or ISO 8601 (`P30D`, `PT1H30M`). Months and
 * years have no fixed length, so they are refused rather than guessed.
 */
import { PurgerError } from "../errors.js";
import { describeValue } from "./errors.js";

const NUMBER = String.raw`\d+(?:\.\d+)?`;
const SIMPLE = `(?:${NUMBER}(?:ms|s|m|h|d|w))+`;
const ISO = `P(?!$)(?:${NUMBER}W)?(?:${NUMBER}D)?(?:T(?=\\d)(?:${NUMBER}H)?(?:${NUMBER}M)?(?:${NUMBER}S)?)?`;

/** The grammar of a duration, unanchored (to embed in other patterns). */
export const DURATION_SOURCE = `(?:${SIMPLE}|${ISO})`;

/** The grammar of a duration as a JSON Schema `pattern` (the same one `parseDuration` accepts). */
export const DURATION_PATTERN = `^${DURATION_SOURCE}$`;

/** What a duration looks like, for messages. */
export const DURATION_EXPECTED = "a duration like 250ms, 90s, 15m, 1h, 7d or ISO 8601 (P30D, PT1H30M)";

/**
 * The longest duration: about 100 years. Longer ones serve no cleanup, and far longer ones (or
 * digits enough to overflow to Infinity) break the date arithmetic of cutoffs and run times.
 */
export const MAX_DURATION_MS = 36_500 * 86_400_000;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
type Unit = keyof typeof UNIT_MS;

const durationRegex = new RegExp(DURATION_PATTERN);
const simplePart = new RegExp(`(${NUMBER})(ms|s|m|h|d|w)`, "g");
const isoRegex = new RegExp(`^P(?:(${NUMBER})W)?(?:(${NUMBER})D)?(?:T(?:(${NUMBER})H)?(?:(${NUMBER})M)?(?:(${NUMBER})S)?)?$`);

/**
 * Parse a duration to milliseconds (rounded to a whole millisecond), at most `MAX_DURATION_MS`.
 * Throws `PurgerError("CONFIG")` whose message says what was expected and found.
 */
export function parseDuration(text: string): number {
  const ms = parseUnbounded(text);
  if (!(ms <= MAX_DURATION_MS)) {
    throw new PurgerError(
      "CONFIG",
      `expected a duration of at most ${formatDuration(MAX_DURATION_MS)} (about 100 years), found ${describeValue(text)}`,
      {
        hint: "a longer duration serves no cleanup, and cutoffs and run times must stay valid dates",
        details: { tooLong: true },
      },
    );
  }
  return ms;
}

function parseUnbounded(text: string): number {
  const value = text.trim();
  if (!durationRegex.test(value)) {
    const why = /^P[^T]*[YM]/.test(value) ? "; months and years have no fixed length, use days (P30D, P365D)" : "";
    throw new PurgerError("CONFIG", `expected ${DURATION_EXPECTED}, found ${JSON.stringify(text)}${why}`, {
      hint: "a duration is a number and a unit (ms, s, m, h, d, w), or ISO 8601",
    });
  }
  if (value.startsWith("P")) {
    const match = isoRegex.exec(value);
    const [, weeks, days, hours, minutes, seconds] = match ?? [];
    return Math.round(
      num(weeks) * UNIT_MS.w + num(days) * UNIT_MS.d + num(hours) * UNIT_MS.h + num(minutes) * UNIT_MS.m + num(seconds) * UNIT_MS.s,
    );
  }
  let ms = 0;
  for (const [, amount, unit] of value.matchAll(simplePart)) {
    ms += Number(amount) * UNIT_MS[unit as Unit];
  }
  return Math.round(ms);
}

/** A short human form of a duration in milliseconds: `0s`, `250ms`, `1h30m`, `7d`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  let rest = Math.round(ms);
  if (rest === 0) return "0s";
  let out = "";
  for (const unit of ["d", "h", "m", "s", "ms"] as const) {
    const size = UNIT_MS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}

function num(part: string | undefined): number {
  return part === undefined ? 0 : Number(part);
}
