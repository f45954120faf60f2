import { Cron } from "croner";
import type { MissedRuns } from "../../engine/protocol/messages";
import type { JobConfig, JobLifecycleEvent, MissedRunPolicy } from "../../engine/protocol/snapshot";
import type { Service } from "../api-types";
import { dnsLabelError, integerError } from "../validation";
import { emptyGitSource, GIT_SOURCE_SERVER_PATHS, gitSourceConfig, gitSourceErrors, gitSourceValues, type GitSourceValues } from "./git-source";

/**
 * A JOB service's settings as its form edits them (strings, as typed), and the conversions to
 * and from the API's `config` (engine/protocol/snapshot.ts `jobConfig` is the authority).
 */
export type JobFormValues = GitSourceValues & {
  name: string;
  buildCommand: string;
  command: string;
  triggerType: "cron" | "lifecycle";
  schedule: string;
  timeZone: string;
  missedRuns: MissedRunPolicy;
  on: JobLifecycleEvent[];
  timeoutSeconds: string;
  retries: string;
};

export type JobField = keyof JobFormValues;

export const LIFECYCLE_EVENTS: { value: JobLifecycleEvent; label: string; description: string }[] = [
  { value: "start", label: "Starts", description: "A deployment that includes the job runs it before the services after it start." },
  { value: "stop", label: "Stops", description: "A STOP deployment runs it before the services stop." },
  { value: "delete", label: "Is deleted", description: "Deleting the environment runs it before its services are removed." },
];

export const MISSED_RUN_POLICIES: { value: MissedRunPolicy; label: string; description: string }[] = [
  {
    value: "run-once",
    label: "Run once",
    description: "When the engine is back (stopped, or its host rebooted), the job runs once for all the runs it missed.",
  },
  { value: "skip", label: "Skip", description: "Missed runs are recorded, not run: the job waits for its next scheduled time." },
];

/** The browser's zone: "0 3 * * *" then means 3 a.m. where the person creating the job is. */
function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function emptyJobForm(): JobFormValues {
  return {
    name: "",
    ...emptyGitSource,
    buildCommand: "",
    command: "",
    triggerType: "cron",
    schedule: "0 3 * * *",
    timeZone: localTimeZone(),
    missedRuns: "run-once",
    on: ["start"],
    timeoutSeconds: "600",
    retries: "0",
  };
}

export function jobFormFrom(service: Service): JobFormValues | null {
  if (service.kind !== "JOB") return null;
  const config = service.config as JobConfig;
  const trigger = config.trigger;
  return {
    name: service.name,
    ...gitSourceValues(config.git),
    buildCommand: config.buildCommand ?? "",
    command: config.command,
    triggerType: trigger.type,
    schedule: trigger.type === "cron" ? trigger.schedule : "0 3 * * *",
    timeZone: trigger.type === "cron" ? trigger.timeZone : localTimeZone(),
    missedRuns: trigger.type === "cron" ? trigger.missedRuns : "run-once",
    on: trigger.type === "lifecycle" ? trigger.on : ["start"],
    timeoutSeconds: String(config.timeoutSeconds),
    retries: String(config.retries),
  };
}

/** The `config` the API takes; an empty build command becomes `empty` (undefined on create, null to clear on update). */
export function jobConfigFrom<E extends undefined | null>(values: JobFormValues, empty: E) {
  return {
    git: gitSourceConfig(values),
    buildCommand: values.buildCommand.trim() === "" ? empty : values.buildCommand.trim(),
    command: values.command.trim(),
    trigger:
      values.triggerType === "cron"
        ? { type: "cron" as const, schedule: values.schedule.trim(), timeZone: values.timeZone, missedRuns: values.missedRuns }
        : { type: "lifecycle" as const, on: LIFECYCLE_EVENTS.map((event) => event.value).filter((event) => values.on.includes(event)) },
    timeoutSeconds: Number(values.timeoutSeconds),
    retries: Number(values.retries),
  };
}

/**
 * Reads a cron expression as the engine will (croner, in the job's time zone): the problem, or
 * the next runs. Five fields, or six with seconds first.
 */
export function readSchedule(schedule: string, timeZone: string, count = 3): { error: string } | { next: Date[] } {
  const value = schedule.trim();
  if (value.length === 0) return { error: "Required" };
  if (value.length < 9 || value.split(/\s+/).length < 5) return { error: "Five fields (minute hour day month weekday), such as 0 3 * * *" };
  if (value.length > 200) return { error: "At most 200 characters" };
  try {
    const cron = new Cron(value, { timezone: timeZone, paused: true });
    const next = cron.nextRuns(count);
    cron.stop();
    return { next };
  } catch (error) {
    const message = (error as Error).message;
    if (/timezone/i.test(message)) return { error: `Unknown time zone ${timeZone}` };
    return { error: message.replace(/^CronPattern: /, "") };
  }
}

export function validateJob(values: JobFormValues, withName: boolean): Partial<Record<JobField, string>> {
  const schedule = values.triggerType === "cron" ? readSchedule(values.schedule, values.timeZone) : null;
  const errors: Partial<Record<JobField, string | null>> = {
    name: withName ? dnsLabelError(values.name) : null,
    ...gitSourceErrors(values),
    command: values.command.trim() === "" ? "Required" : values.command.length > 2000 ? "At most 2000 characters" : null,
    schedule: schedule && "error" in schedule && !/time zone/.test(schedule.error) ? schedule.error : null,
    timeZone:
      values.triggerType === "cron" && (values.timeZone === "" || (schedule && "error" in schedule && /time zone/.test(schedule.error)))
        ? "Choose a time zone"
        : null,
    on: values.triggerType === "lifecycle" && values.on.length === 0 ? "Choose at least one event" : null,
    timeoutSeconds: integerError(values.timeoutSeconds.trim(), 1, 86_400),
    retries: integerError(values.retries.trim(), 0, 10),
  };
  return Object.fromEntries(Object.entries(errors).filter(([, message]) => message)) as Partial<Record<JobField, string>>;
}

/** Server input paths (as in the zod error of `services.create`) to the form's fields; the trigger's own refinement lands on the schedule. */
export const JOB_SERVER_PATHS: [string, JobField][] = [
  ["name", "name"],
  ...GIT_SOURCE_SERVER_PATHS,
  ["config.buildCommand", "buildCommand"],
  ["config.command", "command"],
  ["config.trigger.schedule", "schedule"],
  ["config.trigger.timeZone", "timeZone"],
  ["config.trigger.missedRuns", "missedRuns"],
  ["config.trigger.on", "on"],
  ["config.trigger", "schedule"],
  ["config.timeoutSeconds", "timeoutSeconds"],
  ["config.retries", "retries"],
];

/** "3 scheduled runs missed; ran once for them" or "at least 1000 … missed; skipped (the job's setting)". */
export function missedRunsSummary(missed: Pick<MissedRuns, "count" | "countCapped" | "action">): string {
  const count = `${missed.countCapped ? "At least " : ""}${missed.count} scheduled run${missed.count === 1 ? "" : "s"} missed`;
  return `${count}; ${missed.action === "ran-once" ? "ran once for them" : "skipped, as the job's setting says"}`;
}

/** "10 min", "1 h 30 min", "45 s": a job's time limit as people say it. */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  return [hours ? `${hours} h` : "", minutes ? `${minutes} min` : "", rest ? `${rest} s` : ""].filter(Boolean).join(" ");
}
