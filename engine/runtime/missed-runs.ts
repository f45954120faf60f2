import { Cron } from "croner";
import type { JobTrigger } from "../protocol";

type CronTrigger = Extract<JobTrigger, { type: "cron" }>;

export type MissedTimes = { count: number; countCapped: boolean; firstAt: Date; lastAt: Date };

/**
 * Counting stops here: croner takes about half a millisecond per step, and an every-second job
 * left for a week would otherwise hold up the engine's start for minutes.
 */
export const MISSED_RUNS_COUNT_LIMIT = 1_000;

/**
 * The scheduled times of a cron trigger after `since` (the last moment an engine watched the
 * schedule) and up to `now`: the runs nobody ran. Null when there were none.
 */
export function findMissedRuns(trigger: CronTrigger, since: Date, now: Date): MissedTimes | null {
  const cron = new Cron(trigger.schedule, { timezone: trigger.timeZone, paused: true });
  try {
    const firstAt = cron.nextRun(since);
    if (!firstAt || firstAt > now) return null;
    let count = 1;
    let lastAt = firstAt;
    for (let at = cron.nextRun(firstAt); at && at <= now; at = cron.nextRun(at)) {
      if (count === MISSED_RUNS_COUNT_LIMIT) {
        // More than counted: the last one by stepping back from now, which costs one step.
        // previousRuns looks strictly before its whole second, so start from the next one.
        const nextSecond = new Date(Math.floor(now.getTime() / 1000) * 1000 + 1000);
        return { count, countCapped: true, firstAt, lastAt: cron.previousRuns(1, nextSecond)[0] ?? at };
      }
      count += 1;
      lastAt = at;
    }
    return { count, countCapped: false, firstAt, lastAt };
  } finally {
    cron.stop();
  }
}
