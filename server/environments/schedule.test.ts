import { describe, expect, it } from "vitest";
import { environmentSchedule, latestBoundary } from "./schedule";

const office = { weekdays: [1, 2, 3, 4, 5], start: "08:00", stop: "20:00", timeZone: "Europe/Paris" };

describe("environment schedules", () => {
  it("finds the start and stop times crossed in a window, in the schedule's time zone", () => {
    // Monday 2026-11-30: 08:00 in Paris is 07:00 UTC (winter time).
    expect(latestBoundary(office, new Date("2026-11-30T06:59:00Z"), new Date("2026-11-30T07:00:00Z"))).toEqual({
      action: "DEPLOY",
      at: new Date("2026-11-30T07:00:00Z"),
    });
    expect(latestBoundary(office, new Date("2026-11-30T07:00:00Z"), new Date("2026-11-30T18:59:00Z"))).toBeNull();
    expect(latestBoundary(office, new Date("2026-11-30T07:00:00Z"), new Date("2026-11-30T19:00:00Z"))?.action).toBe("STOP");
  });

  it("keeps weekends off and acts once for a long gap, as the latest boundary says", () => {
    // Friday 20:00 Paris stop, then nothing until Monday 08:00.
    expect(latestBoundary(office, new Date("2026-12-04T18:30:00Z"), new Date("2026-12-07T06:00:00Z"))).toEqual({
      action: "STOP",
      at: new Date("2026-12-04T19:00:00Z"),
    });
    expect(latestBoundary(office, new Date("2026-12-05T00:00:00Z"), new Date("2026-12-06T23:00:00Z"))).toBeNull();
    expect(latestBoundary(office, new Date("2026-11-23T00:00:00Z"), new Date("2026-11-30T07:30:00Z"))?.action).toBe("DEPLOY");
  });

  it("stops an overnight schedule the morning after each start day, so a weekday schedule does not run all weekend", () => {
    const nights = { weekdays: [1, 2, 3, 4, 5], start: "22:00", stop: "06:00", timeZone: "UTC" };
    // Friday 2026-12-11 22:00 starts it; Saturday 06:00 stops it.
    expect(latestBoundary(nights, new Date("2026-12-11T21:00:00Z"), new Date("2026-12-11T23:00:00Z"))?.action).toBe("DEPLOY");
    expect(latestBoundary(nights, new Date("2026-12-11T23:00:00Z"), new Date("2026-12-12T07:00:00Z"))).toEqual({
      action: "STOP",
      at: new Date("2026-12-12T06:00:00Z"),
    });
    // Nothing more until Monday 22:00: Monday morning has no stop (Sunday night was not a start).
    expect(latestBoundary(nights, new Date("2026-12-12T07:00:00Z"), new Date("2026-12-14T21:59:00Z"))).toBeNull();
    expect(latestBoundary(nights, new Date("2026-12-14T21:59:00Z"), new Date("2026-12-15T06:00:00Z"))).toEqual({
      action: "STOP",
      at: new Date("2026-12-15T06:00:00Z"),
    });
  });

  it("follows daylight saving time", () => {
    // Monday 2026-06-01: 08:00 in Paris is 06:00 UTC (summer time).
    expect(latestBoundary(office, new Date("2026-06-01T05:00:00Z"), new Date("2026-06-01T06:30:00Z"))?.at).toEqual(new Date("2026-06-01T06:00:00Z"));
  });

  it("rejects schedules a user could not mean", () => {
    expect(environmentSchedule.safeParse({ ...office, timeZone: "Mars/Olympus" }).success).toBe(false);
    expect(environmentSchedule.safeParse({ ...office, start: "25:00" }).success).toBe(false);
    expect(environmentSchedule.safeParse({ ...office, weekdays: [] }).success).toBe(false);
    expect(environmentSchedule.safeParse({ ...office, stop: "08:00" }).success).toBe(false);
    expect(environmentSchedule.safeParse({ ...office, weekdays: [7] }).success).toBe(true);
  });
});
