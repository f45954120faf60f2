import { describe, expect, it } from "vitest";
import { jobConfig } from "../../engine/protocol/snapshot";
import { emptyJobForm, jobConfigFrom, jobFormFrom, missedRunsSummary, readSchedule, validateJob, type JobFormValues } from "./job-config";

const form = (changes: Partial<JobFormValues> = {}): JobFormValues => ({
  ...emptyJobForm(),
  name: "report",
  gitUrl: "https://git.example.com/app.git",
  command: "node report.js",
  timeZone: "Europe/Paris",
  ...changes,
});

describe("job form", () => {
  it("turns what the form accepts into a config the protocol's schema accepts, and back", () => {
    for (const values of [
      form(),
      form({ missedRuns: "skip" }),
      form({ triggerType: "lifecycle", on: ["start", "delete"], buildCommand: "npm ci", retries: "3", timeoutSeconds: "60" }),
    ]) {
      expect(validateJob(values, true)).toEqual({});
      const config = jobConfig.parse(jobConfigFrom(values, undefined));
      const back = jobFormFrom({ kind: "JOB", config, name: "report" } as Parameters<typeof jobFormFrom>[0]);
      expect(back).toMatchObject({ ...values, timeZone: values.triggerType === "cron" ? values.timeZone : back!.timeZone });
    }
    // Lifecycle events keep start, stop, delete order whatever order they were ticked in.
    expect(jobConfigFrom(form({ triggerType: "lifecycle", on: ["delete", "start"] }), undefined).trigger).toEqual({
      type: "lifecycle",
      on: ["start", "delete"],
    });
  });

  it("refuses what the server would refuse, on the field at fault", () => {
    expect(validateJob(form({ schedule: "0 99 * * *" }), true)).toEqual({ schedule: expect.stringContaining("hour") });
    expect(validateJob(form({ schedule: "@daily" }), true)).toEqual({ schedule: expect.stringContaining("Five fields") });
    expect(validateJob(form({ timeZone: "Mars/Base" }), true)).toEqual({ timeZone: "Choose a time zone" });
    expect(validateJob(form({ triggerType: "lifecycle", on: [] }), true)).toEqual({ on: "Choose at least one" });
    // The protocol's own messages, sentence-cased, on the fields at fault.
    expect(validateJob(form({ command: " ", retries: "11", timeoutSeconds: "0", name: "Report", gitUrl: "ext::sh -c id" }), true)).toEqual({
      name: "Use lowercase letters, digits and inner hyphens",
      gitUrl: expect.stringMatching(/^"ext::" URLs are refused/),
      command: "Required",
      retries: "At most 10",
      timeoutSeconds: "At least 1",
    });
    expect(validateJob(form({ retries: "", timeoutSeconds: "ten" }), false)).toEqual({
      retries: "Enter a whole number",
      timeoutSeconds: "Enter a whole number",
    });
    // A bad schedule does not matter while the job runs with the environment instead.
    expect(validateJob(form({ triggerType: "lifecycle", schedule: "nonsense" }), false)).toEqual({});
  });

  it("says how many runs were missed and what the engine did about them", () => {
    expect(missedRunsSummary({ count: 3, action: "ran-once" })).toBe("3 scheduled runs missed; ran once for them");
    expect(missedRunsSummary({ count: 1, action: "skipped" })).toBe("1 scheduled run missed; skipped, as the job's setting says");
    expect(missedRunsSummary({ count: 1000, countCapped: true, action: "skipped" })).toMatch(/^At least 1000 scheduled runs missed/);
  });

  it("reads the next runs in the job's time zone", () => {
    const read = readSchedule("0 3 * * *", "Asia/Tokyo", 2);
    if (!("next" in read)) throw new Error(read.error);
    expect(read.next).toHaveLength(2);
    for (const date of read.next) expect(date.getUTCHours()).toBe(18);
  });
});
