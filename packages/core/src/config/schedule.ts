/**
 * `schedule:` of an entry: a 5-field cron expression (in a timezone) or
 * `every <duration>` (one second and up). Cron strings must be valid for both
 * graphile-worker's cron (which fires UTC schedules once per tick
 * cluster-wide) and croner (which evaluates other timezones), so only the
 * syntax both understand is accepted: numbers, ranges, lists, `*` and steps of `*`.
 */
import { Cron } from "croner";
import { parseCronItems } from "graphile-worker";
import { isPurgerError, PurgerError } from "../errors.js";
import type { Schedule } from "./types.js";
import { formatDuration, MAX_DURATION_MS, parseDuration } from "./durations.js";

/** The shortest `every` interval. */
export const MIN_EVERY_MS = 1_000;

const CRON_EXPECTED = 'a 5-field cron expression (minute hour day-of-month month day-of-week, e.g. "17 * * * *") or "every 30s"';

/**
 * Parse a `schedule:` value. `timezone` applies to cron expressions and must
 * already be valid (see `validateTimezone`). Throws `PurgerError("CONFIG")`.
 */
export function parseSchedule(text: string, options: { timezone?: string } = {}): Schedule {
  const value = text.trim();
  const every = /^every(?:\s+(.*))?$/i.exec(value);
  if (every) return parseEvery(text, every[1]?.trim() ?? "");

  const fields = value.split(/\s+/).filter((field) => field !== "");
  if (fields.length !== 5) {
    const extra = fields.length === 6 ? '; seconds are not supported, use "every 30s" for sub-minute schedules' : "";
    throw scheduleError(
      `expected ${CRON_EXPECTED}, found ${JSON.stringify(text)} (${fields.length} field${fields.length === 1 ? "" : "s"})${extra}`,
    );
  }
  const expression = fields.join(" ");
  const timezone = options.timezone ?? "UTC";

  fields.forEach((field, index) => {
    if (!/^[0-9*/,-]+$/.test(field)) {
      throw scheduleError(
        `unsupported cron expression ${JSON.stringify(text)}: the ${FIELD_NAMES[index]} field ${JSON.stringify(field)} is not a number, range, list or */n; names (MON, JAN) and L/W/#/? are not supported`,
      );
    }
  });
  try {
    parseCronItems([{ task: "purger:validate", identifier: "purger:validate", match: expression }]);
  } catch (error) {
    throw scheduleError(`invalid cron expression ${JSON.stringify(text)}: ${reason(error)}`, error);
  }
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone, paused: true });
  } catch (error) {
    throw scheduleError(`invalid cron expression ${JSON.stringify(text)}: ${reason(error)}`, error);
  }
  if (cron.nextRun() === null) {
    throw scheduleError(`cron expression ${JSON.stringify(text)} never fires; expected a date that exists (e.g. not 31 February)`);
  }
  return { kind: "cron", expression, timezone };
}

/**
 * Check an IANA timezone name with Intl and return its canonical spelling
 * (`europe/paris` → `Europe/Paris`). Throws `PurgerError("CONFIG")`.
 */
export function validateTimezone(name: string): string {
  try {
    const canonical = new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
    // Croner must understand it too, or the schedule would fail only when it first fires.
    new Cron("* * * * *", { timezone: canonical, paused: true }).nextRun();
    return canonical;
  } catch (error) {
    throw new PurgerError("CONFIG", `expected an IANA timezone name (UTC, Europe/Paris, America/New_York), found ${JSON.stringify(name)}`, {
      hint: "see the TZ identifiers of https://en.wikipedia.org/wiki/List_of_tz_database_time_zones",
      cause: error,
    });
  }
}

function parseEvery(text: string, interval: string): Schedule {
  let everyMs: number;
  try {
    everyMs = parseDuration(interval);
  } catch (error) {
    if (isPurgerError(error) && error.details?.["tooLong"] === true) {
      throw scheduleError(
        `expected an interval of at most ${formatDuration(MAX_DURATION_MS)} (about 100 years), found ${JSON.stringify(text)}`,
        error,
      );
    }
    throw scheduleError(`expected "every" and a duration (every 30s, every 15m, every 1h), found ${JSON.stringify(text)}`, error);
  }
  if (everyMs < MIN_EVERY_MS) {
    throw scheduleError(`expected an interval of 1s or more, found ${JSON.stringify(text)}`);
  }
  return { kind: "every", everyMs };
}

function scheduleError(message: string, cause?: unknown): PurgerError {
  return new PurgerError("CONFIG", message, {
    hint: 'a schedule is a 5-field cron expression such as "17 * * * *" or an interval such as "every 15m"',
    ...(cause === undefined ? {} : { cause }),
  });
}

const FIELD_NAMES = ["minute", "hour", "day-of-month", "month", "day-of-week"] as const;
const GRAPHILE_FIELD_NAMES: Record<string, string> = {
  minutes: "minute",
  hours: "hour",
  dates: "day-of-month",
  months: "month",
  "days of week": "day-of-week",
};

/** The cause of a cron error in our words (graphile-worker names its own call site). */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message
    .replace(/^CronPattern:\s*/, "")
    .replace(
      / in ([a-z ]+?) range in item 0 of parseCronItems call/,
      (_, field: string) => ` in the ${GRAPHILE_FIELD_NAMES[field] ?? field} field`,
    )
    .replace(/ in item 0 of parseCronItems call/, "")
    .replace(/^\w/, (first) => first.toLowerCase())
    .replace(/\.$/, "");
}
