import { describe, expect, it } from "vitest";
import { findMissedRuns, MISSED_RUNS_COUNT_LIMIT } from "./missed-runs";

const cron = (schedule: string, timeZone = "UTC") => ({ type: "cron" as const, schedule, timeZone, missedRuns: "run-once" as const });

describe("missed runs of a cron schedule", () => {
  it("counts the scheduled times between the last watched moment and now, in the job's time zone", () => {
    // 07:00 in Paris is 05:00 UTC in summer; the engine was away from Monday 06:00 UTC to Wednesday 08:00 UTC.
    const missed = findMissedRuns(cron("0 7 * * *", "Europe/Paris"), new Date("2026-06-01T06:00:00Z"), new Date("2026-06-03T08:00:00Z"));
    expect(missed).toEqual({ count: 2, countCapped: false, firstAt: new Date("2026-06-02T05:00:00Z"), lastAt: new Date("2026-06-03T05:00:00Z") });
  });

  it("finds nothing when no scheduled time passed, and does not count the moment last watched", () => {
    expect(findMissedRuns(cron("0 7 * * *"), new Date("2026-06-01T07:00:00Z"), new Date("2026-06-02T06:59:59Z"))).toBeNull();
    expect(findMissedRuns(cron("0 7 * * *"), new Date("2026-06-01T07:00:00Z"), new Date("2026-06-02T07:00:00Z"))).toMatchObject({ count: 1 });
  });

  it("stops counting at the limit, and still gives the last missed time", () => {
    const missed = findMissedRuns(cron("* * * * * *"), new Date("2026-06-01T00:00:00Z"), new Date("2026-06-08T00:00:00.500Z"));
    expect(missed).toEqual({
      count: MISSED_RUNS_COUNT_LIMIT,
      countCapped: true,
      firstAt: new Date("2026-06-01T00:00:01Z"),
      lastAt: new Date("2026-06-08T00:00:00Z"),
    });
  });
});
