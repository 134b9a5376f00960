/**
 * Schedules on graphile-worker: cron strings through its cron (one tick
 * cluster-wide, no back-fill of missed ticks), `every` as a self-rescheduling
 * job deduplicated by its job key, plus jitter.
 */
import { Cron } from "croner";
import { parseCronItems, type ParsedCronItem, type TimestampDigest } from "graphile-worker";
import type { EntryConfig, Schedule } from "../config/types.js";

export const ENTRY_TASK = "purger:entry";

export function entryQueue(id: string): string {
  return `purger:entry:${id}`;
}

/** Job keys of an entry: one per reason, so a pending tick never piles up behind another. */
export function entryJobKey(id: string, reason: "tick" | "every" | "start" | "continue" | "after" | "retry"): string {
  return `purger:entry:${id}:${reason}`;
}

/** graphile-worker cron items for the cron-scheduled entries (timezones through a matcher). */
export function cronItems(entries: EntryConfig[]): ParsedCronItem[] {
  const items = entries.flatMap((entry) => {
    const schedule = entry.schedule;
    if (!entry.enabled || schedule?.kind !== "cron") return [];
    return [
      {
        task: ENTRY_TASK,
        identifier: `purger:${entry.id}`,
        match:
          schedule.timezone === "UTC" || schedule.timezone === "Etc/UTC"
            ? schedule.expression
            : timezoneMatcher(schedule.expression, schedule.timezone),
        payload: { entry: entry.id, trigger: "schedule" },
        options: {
          // Missed ticks are not back-filled: a cleanup that runs late catches up in its next run anyway.
          backfillPeriod: 0,
          queueName: entryQueue(entry.id),
          jobKey: entryJobKey(entry.id, "tick"),
          jobKeyMode: "preserve_run_at" as const,
          maxAttempts: 5,
        },
      },
    ];
  });
  return parseCronItems(items);
}

/** graphile-worker evaluates cron in UTC; a matcher converts its UTC minute to the entry's timezone. */
function timezoneMatcher(expression: string, timezone: string): (digest: TimestampDigest) => boolean {
  const cron = new Cron(expression, { timezone, paused: true });
  return (digest) => {
    const year = new Date().getUTCFullYear();
    const at = Date.UTC(year, digest.month - 1, digest.date, digest.hour, digest.min);
    return cron.nextRun(new Date(at - 1000))?.getTime() === at;
  };
}

/** The next time an entry's schedule fires after `from`. */
export function nextRunAt(schedule: Schedule, from: Date = new Date()): Date | null {
  if (schedule.kind === "every") return new Date(from.getTime() + schedule.everyMs);
  const cron = new Cron(schedule.expression, { timezone: schedule.timezone, paused: true });
  return cron.nextRun(from) ?? null;
}

/** The schedule's interval (for jitter): `every`'s period, or the gap between the next two cron ticks. */
export function intervalOf(schedule: Schedule, from: Date = new Date()): number {
  if (schedule.kind === "every") return schedule.everyMs;
  const first = nextRunAt(schedule, from);
  const second = first ? nextRunAt(schedule, first) : null;
  return first && second ? second.getTime() - first.getTime() : 60_000;
}

/** A random delay in [0, jitter × interval). */
export function jitterDelay(entry: EntryConfig, random: () => number = Math.random): number {
  if (!entry.schedule || entry.jitter <= 0) return 0;
  return Math.floor(random() * entry.jitter * intervalOf(entry.schedule));
}
