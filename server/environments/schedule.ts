import { Cron } from "croner";
import { z } from "zod";
import type { EnvironmentSchedule } from "../db/schema";

const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "use HH:MM, 24-hour");

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export const environmentSchedule = z
  .object({
    weekdays: z.array(z.number().int().min(1).max(7)).min(1, "choose at least one weekday").max(7),
    start: clock,
    stop: clock,
    timeZone: z.string().refine(isTimeZone, "unknown time zone (use an IANA name such as Europe/Paris)"),
  })
  .refine((s) => s.start !== s.stop, { message: "start and stop must differ", path: ["stop"] });

/** Cron day-of-week numbers (0 = Sunday) for ISO weekdays (7 = Sunday). */
function cronDays(weekdays: number[]): string {
  return [...new Set(weekdays.map((day) => day % 7))].sort().join(",");
}

function pattern(time: string, weekdays: number[]): string {
  const [hour, minute] = time.split(":");
  return `0 ${Number(minute)} ${Number(hour)} * * ${cronDays(weekdays)}`;
}

/**
 * The weekdays of the stop time. An overnight schedule (stop before start: 22:00 to 06:00) stops
 * the morning after each start day, so Friday's 22:00 start stops on Saturday at 06:00, not on
 * Monday, and a Monday start day has no stop on its own morning.
 */
export function stopWeekdays(schedule: EnvironmentSchedule): number[] {
  return schedule.stop < schedule.start ? schedule.weekdays.map((day) => (day % 7) + 1) : schedule.weekdays;
}

/** The next instant strictly after `from` at which `time` falls on one of the weekdays, in the zone. */
function nextAt(time: string, weekdays: number[], timeZone: string, from: Date): Date | null {
  const cron = new Cron(pattern(time, weekdays), { timezone: timeZone, paused: true });
  try {
    return cron.nextRun(from);
  } finally {
    cron.stop();
  }
}

export type ScheduleBoundary = { action: "DEPLOY" | "STOP"; at: Date };

/**
 * The latest start or stop time of the schedule in (from, to], if any: what the environment
 * should have become at the end of that window. Only the latest counts: after a week without
 * a worker, it is started or stopped once, as it would be now.
 */
export function latestBoundary(schedule: EnvironmentSchedule, from: Date, to: Date): ScheduleBoundary | null {
  let latest: ScheduleBoundary | null = null;
  for (const [time, weekdays, action] of [
    [schedule.start, schedule.weekdays, "DEPLOY"],
    [schedule.stop, stopWeekdays(schedule), "STOP"],
  ] as const) {
    let cursor = from;
    for (;;) {
      const at = nextAt(time, weekdays, schedule.timeZone, cursor);
      if (!at || at > to) break;
      if (!latest || at > latest.at) latest = { action, at };
      cursor = at;
    }
  }
  return latest;
}
