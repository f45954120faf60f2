import { Cron } from "croner";
import type { MissedRuns } from "../../engine/protocol/messages";
import { z } from "zod";
import { dnsLabel, jobConfig, type JobConfig, type JobLifecycleEvent, type MissedRunPolicy } from "../../engine/protocol/snapshot";
import type { Service } from "../api-types";
import { apiSchemaResolver } from "../forms/use-api-form";
import { emptyGitSource, GIT_SOURCE_SERVER_PATHS, gitSourceConfig, gitSourceValues, type GitSourceValues } from "./git-source";

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
    timeoutSeconds: integer(values.timeoutSeconds),
    retries: integer(values.retries),
  };
}

/** A number typed in a text box: empty is no number at all (Number("") would be 0). */
function integer(text: string): number {
  return text.trim() === "" ? Number.NaN : Number(text);
}

/**
 * Reads a cron expression as the engine will (croner, in the job's time zone): the problem, or
 * the next runs. Five fields, or six with seconds first.
 */
export function readSchedule(schedule: string, timeZone: string, count = 3): { error: string } | { next: Date[] } {
  const value = schedule.trim();
  if (value.length === 0) return { error: "Required" };
  if (value.length < 9 || value.split(/\s+/).length < 5) return { error: "Five fields (minute hour day month weekday), such as 0 3 * * *" };
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

/** What the API takes (`services.create` of a JOB), by the protocol's schema: the name only where the form has it. */
const withNameSchema = z.object({ name: dnsLabel, config: jobConfig });
const withoutNameSchema = z.object({ config: jobConfig });

/**
 * The job form's problems, by field: the protocol's schema first, then the schedule as the
 * engine reads it (croner, in the job's time zone), which the schema leaves to the server.
 */
export function validateJob(values: JobFormValues, withName: boolean): Partial<Record<JobField, string>> {
  const schema = apiSchemaResolver(
    withName ? withNameSchema : withoutNameSchema,
    (v: JobFormValues) => ({ name: v.name.trim(), config: jobConfigFrom(v, undefined) }),
    JOB_SERVER_PATHS,
  );
  const schedule = values.triggerType === "cron" ? readSchedule(values.schedule, values.timeZone) : null;
  const cron: Partial<Record<JobField, string>> =
    schedule && "error" in schedule ? (/time zone/.test(schedule.error) ? { timeZone: "Choose a time zone" } : { schedule: schedule.error }) : {};
  // croner's words for a schedule say more than the schema's length limits.
  return { ...(schema(values) as Partial<Record<JobField, string>>), ...cron };
}

/** Input paths (as in the schema's and `services.create`'s issues) to the form's fields; the trigger's own refinement lands on the schedule. */
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
