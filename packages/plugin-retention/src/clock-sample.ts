/**
 * The format check of the clock: `columnFormat` says how to read time out of
 * the column, and a wrong one deletes rows that are not old (random UUIDs read
 * as UUIDv7 sort below the cutoff by chance; seconds read as milliseconds are
 * all from 1970). Before a run changes anything it reads the clock's oldest and
 * newest values and refuses a format they do not fit (test/clock-format.test.ts).
 */
import { PurgerError, type Queryable, displayIdent } from "@purger/core";
import type { Plan } from "./resolve.js";
import { bind, buildClockSample } from "./sql.js";

/** What the values read say about the format; `null` for `timestamp`, whose column type already fixes it. */
export interface ClockSample {
  /** How many distinct values were read (the oldest and newest of the column). */
  read: number;
  /** The oldest and newest time they decode to; null when the column holds no value. */
  range: { from: Date; to: Date } | null;
}

const YEAR_2000 = Date.UTC(2000, 0, 1);
const YEAR_3000 = Date.UTC(3000, 0, 1);
/** Ids are generated before they are read; a day covers clocks that run ahead. */
const FUTURE_SLACK_MS = 86_400_000;
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CANONICAL_ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

type Verdict = { ms: number } | { kind: "shape" | "version" | "time"; why: string };

/**
 * Reads the clock's oldest and newest values and throws a CONFIG error naming
 * `options.columnFormat` when one of them does not fit it.
 */
export async function checkClockFormat(db: Queryable, plan: Plan, where: string, now: Date = new Date()): Promise<ClockSample | null> {
  if (plan.format === "timestamp") return null;
  const result = await db.query<{ v: string }>(bind(buildClockSample(plan), {}));
  const values = result.rows.map((r) => r.v);
  const verdicts = values.map((v) => judge(plan, v, now.getTime()));
  const clock = `${plan.table.display}.${displayIdent(plan.clock.name)}`;
  const read = `${values.length} values of ${clock} read (its oldest and newest)`;
  const bad = verdicts.flatMap((v, i) => ("kind" in v ? [{ ...v, value: values[i]! }] : []));
  if (bad.length > 0) {
    const first = bad.find((b) => b.kind === "shape") ?? bad.find((b) => b.kind === "version") ?? bad[0]!;
    const what =
      first.kind === "time" ? "plausible times" : plan.format === "ulid" ? "ULIDs" : plan.format === "uuidv7" ? "UUIDv7s" : "times";
    throw new PurgerError(
      "CONFIG",
      `options.columnFormat is "${plan.format}", but ${bad.length} of the ${read} are not ${what}: ${first.why} (${where})`,
      { hint: hintFor(plan, first) },
    );
  }
  const times = verdicts.map((v) => (v as { ms: number }).ms);
  return {
    read: values.length,
    range: times.length === 0 ? null : { from: new Date(Math.min(...times)), to: new Date(Math.max(...times)) },
  };
}

/** The doctor's line for a format that fits. */
export function describeSample(plan: Plan, sample: ClockSample): string {
  const clock = `${plan.table.display}.${displayIdent(plan.clock.name)}`;
  if (!sample.range) return `columnFormat ${plan.format}: ${clock} holds no value yet to check it against`;
  return (
    `columnFormat ${plan.format} fits the ${sample.read} values of ${clock} read (its oldest and newest): ` +
    `from ${sample.range.from.toISOString()} to ${sample.range.to.toISOString()}`
  );
}

function judge(plan: Plan, value: string, now: number): Verdict {
  switch (plan.format) {
    case "epoch":
    case "epochMs": {
      const n = Number(value);
      const unit = plan.format === "epoch" ? "seconds" : "milliseconds";
      if (!Number.isFinite(n)) return { kind: "shape", why: `${value} is not a number` };
      const ms = plan.format === "epoch" ? n * 1000 : n;
      if (ms < YEAR_2000) return { kind: "time", why: `${value} read as ${unit} is ${iso(ms)}, before 2000` };
      if (ms >= YEAR_3000) return { kind: "time", why: `${value} read as ${unit} is after the year 3000` };
      return { ms };
    }
    case "uuidv7":
    case "ulid": {
      const asUuid = plan.clock.type.base === "uuid" || plan.format === "uuidv7";
      let ms: number;
      if (asUuid) {
        if (!CANONICAL_UUID.test(value)) {
          return { kind: "shape", why: `"${value}" is not a canonical UUID (lower-case hex, 8-4-4-4-12)` };
        }
        if (plan.format === "uuidv7" && value[14] !== "7") {
          return { kind: "version", why: `"${value}" is a version ${value[14]} UUID` };
        }
        ms = parseInt(value.slice(0, 8) + value.slice(9, 13), 16);
      } else {
        if (!CANONICAL_ULID.test(value)) {
          return { kind: "shape", why: `"${value}" is not a canonical ULID (26 upper-case Crockford base32 characters)` };
        }
        ms = [...value.slice(0, 10)].reduce((t, ch) => t * 32 + CROCKFORD.indexOf(ch), 0);
      }
      if (ms < YEAR_2000) return { kind: "time", why: `"${value}" holds the time ${iso(ms)}, before 2000` };
      if (ms > now + FUTURE_SLACK_MS) return { kind: "time", why: `"${value}" holds the time ${iso(ms)}, in the future` };
      return { ms };
    }
    case "timestamp":
      return { ms: 0 };
  }
}

function hintFor(plan: Plan, bad: { kind: string; value: string }): string {
  switch (plan.format) {
    case "epoch":
      return Number(bad.value) >= YEAR_2000 && Number(bad.value) < YEAR_3000
        ? "the values look like milliseconds since 1970: use columnFormat: epochMs"
        : "columnFormat epoch reads seconds since 1970; check the column holds them (a 0 or a sentinel value would be deleted as old)";
    case "epochMs":
      return Number(bad.value) >= YEAR_2000 / 1000 && Number(bad.value) < YEAR_3000 / 1000
        ? "the values look like seconds since 1970: use columnFormat: epoch"
        : "columnFormat epochMs reads milliseconds since 1970; check the column holds them (a 0 or a sentinel value would be deleted as old)";
    case "uuidv7":
      if (bad.kind === "shape") return "store the ids as uuid, or as text in canonical lower case";
      return "uuidv7 reads the time from the first 48 bits of a version 7 UUID; random UUIDs hold no time: use a timestamp column as the clock";
    case "ulid":
      if (bad.kind === "shape")
        return "ULIDs compare as text only in their canonical upper case: store them upper-case (UPDATE … SET id = upper(id))";
      return "ulid reads the time from the first 48 bits of a ULID; these ids hold none (random UUIDs?): use a timestamp column as the clock";
    case "timestamp":
      return "";
  }
}

function iso(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms since 1970`;
}
