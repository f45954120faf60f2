import { InvalidArgumentError, type Command } from "commander";
import type { Environment } from "../api-types";
import type { Context } from "../context";
import { usageError } from "../errors";
import { keyValues } from "../format";
import { resolveEnvironment } from "../paths";

/**
 * `slipway env schedule p/e`: the environment's start/stop schedule (server/environments/
 * schedule.ts: ISO weekdays, start and stop times, an IANA time zone), shown, changed or cleared
 * through `PATCH /environments/{id}`, the API's only way to set it.
 */
type Schedule = NonNullable<Environment["schedule"]>;

const weekdayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/** `mon-fri`, `sat,sun`, `1-5` (ISO: 1 is Monday, 7 Sunday), or a mix, as ISO weekday numbers. */
export function parseWeekdays(text: string): number[] {
  const day = (word: string) => {
    const lower = word.trim().toLowerCase();
    const number = /^[1-7]$/.test(lower) ? Number(lower) : weekdayNames.findIndex((name) => lower.length >= 3 && name.startsWith(lower)) + 1;
    if (number === 0) throw new InvalidArgumentError(`"${word}" is not a weekday: expected mon … sun or 1 … 7, as a list (sat,sun) or a range (mon-fri)`);
    return number;
  };
  const days = new Set<number>();
  for (const part of text.split(",").map((item) => item.trim())) {
    if (!part) continue;
    const [from, to] = part.split("-");
    const first = day(from!);
    const last = to === undefined ? first : day(to);
    // A range may wrap around the week's end: fri-mon.
    for (let current = first; ; current = (current % 7) + 1) {
      days.add(current);
      if (current === last) break;
    }
  }
  if (days.size === 0) throw new InvalidArgumentError("expected at least one weekday");
  return [...days].sort((a, b) => a - b);
}

/** `Mon-Fri`, `Sat, Sun`, `Mon, Wed-Fri`: runs of consecutive days joined. */
export function describeWeekdays(weekdays: readonly number[]): string {
  const sorted = [...new Set(weekdays)].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let index = 0; index < sorted.length;) {
    let end = index;
    while (end + 1 < sorted.length && sorted[end + 1] === sorted[end]! + 1) end++;
    const name = (day: number) => weekdayNames[day - 1]!.slice(0, 3).replace(/^./, (letter) => letter.toUpperCase());
    runs.push(end > index ? `${name(sorted[index]!)}-${name(sorted[end]!)}` : name(sorted[index]!));
    index = end + 1;
  }
  return runs.join(", ");
}

type ScheduleOptions = { start?: string; stop?: string; days?: number[]; tz?: string; clear?: boolean; json?: boolean };

/** The schedule to send: the stored one with what was given over it; a new one needs its times. */
function nextSchedule(stored: Schedule | null, options: ScheduleOptions): Schedule {
  const start = options.start ?? stored?.start;
  const stop = options.stop ?? stored?.stop;
  if (start === undefined || stop === undefined) throw usageError("a new schedule needs --start <HH:MM> and --stop <HH:MM>");
  return { start, stop, weekdays: options.days ?? stored?.weekdays ?? [1, 2, 3, 4, 5], timeZone: options.tz ?? stored?.timeZone ?? "UTC" };
}

export function registerEnvironmentSchedule(env: Command, ctx: Context): void {
  env
    .command("schedule")
    .description("When the environment starts and stops by itself: without options, print it; with options, change it; --clear removes it")
    .argument("<project/env>")
    .option("--start <HH:MM>", "start it at this time (24-hour)")
    .option("--stop <HH:MM>", "stop it at this time (24-hour)")
    .option("--days <days>", "on these weekdays: mon-fri, sat,sun, 1-5 (default for a new schedule: mon-fri)", parseWeekdays)
    .option("--tz <zone>", "the times' IANA time zone, e.g. Europe/Paris (default for a new schedule: UTC)")
    .option("--clear", "remove the schedule: the environment runs until it is stopped")
    .option("--json", "print the API object")
    .action(async (pathText: string, options: ScheduleOptions) => {
      const changing = options.start !== undefined || options.stop !== undefined || options.days !== undefined || options.tz !== undefined;
      if (changing && options.clear) throw usageError("give --clear or new times, not both");
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      let environment = await api.get<Environment>(`/environments/${environmentId}`);
      if (options.clear || changing) {
        const schedule = options.clear ? null : nextSchedule(environment.schedule, options);
        environment = await api.patch<Environment>(`/environments/${environmentId}`, { schedule });
      }
      if (options.json) return ctx.printJson(environment.schedule);
      const schedule = environment.schedule;
      if (!schedule)
        return ctx.print(
          `${options.clear ? "Cleared the schedule of" : "No schedule on"} ${pathText}: it runs until stopped (set one with slipway env schedule ${pathText} --start 08:00 --stop 20:00)`,
        );
      ctx.print(
        keyValues([
          ["days", describeWeekdays(schedule.weekdays)],
          ["start", schedule.start],
          ["stop", schedule.stop],
          ["time zone", schedule.timeZone],
        ]),
      );
    });
}
