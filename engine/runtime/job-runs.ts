import fs from "node:fs";
import fsp from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { Cron } from "croner";
import { z } from "zod";
import { jobRun, jobTrigger, missedRuns, OUTPUT_KEY_MAX, OUTPUTS_MAX, shortenText, type JobRun } from "../protocol";
import { StepError } from "./runtime";

/** What the engine keeps of a JOB between deployments (its job.json). */
export const jobState = z.object({
  serviceId: z.string(),
  name: z.string(),
  /** The built release whose launch file runs the job. */
  releaseId: z.string(),
  commit: z.string().optional(),
  trigger: jobTrigger,
  timeoutSeconds: z.number().int(),
  retries: z.number().int(),
  /** A stopped cron job keeps its release but no schedule. */
  stopped: z.boolean(),
  lastRun: jobRun.optional(),
  /**
   * The last moment an engine watched this job's schedule (scheduled it, or saw a scheduled
   * time come): scheduled times after it that passed before the next engine took the job up
   * were missed. Absent in states written before it existed: nothing is counted then.
   */
  scheduleSeenAt: z.string().optional(),
  /** The latest missed runs, and what was done about them. */
  missed: missedRuns.optional(),
});
export type JobState = z.infer<typeof jobState>;

export type RunTrigger = JobRun["trigger"];

/** How one attempt ended; a runtime runs it as a process (local) or a one-off container (docker). */
export type AttemptResult = { code: number | null; signal: string | null; timedOut: boolean; aborted: boolean };

/** One attempt of a run: the job's command to completion, killed at the timeout or on the signal. */
export type Attempt = (run: {
  /** SLIPWAY_JOB_RUN_ID and SLIPWAY_JOB_TRIGGER, for the job's environment. */
  env: Record<string, string>;
  /** Where the run may write its outputs, on the engine's host; the runtime tells the job where it sees it (SLIPWAY_OUTPUT_FILE). */
  outputFile: string;
  timeoutMs: number;
  signal?: AbortSignal;
  onLine: (fd: "stdout" | "stderr", line: string) => void;
}) => Promise<AttemptResult>;

export type RunOptions = {
  runId: string;
  trigger: RunTrigger;
  attempt: Attempt;
  timeoutSeconds: number;
  retries: number;
  /** Where the run may write its outputs, on the engine's host. */
  outputFile: string;
  signal?: AbortSignal;
  output: (fd: "stdout" | "stderr" | "system", text: string) => void;
  /** Pause between attempts (doubles each time); tests shorten it. */
  retryDelayMs?: number;
};

export type RunResult = { run: JobRun; outputs: Record<string, string> };

const outputKey = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Runs a job to completion: each attempt killed at the timeout (in its own process group, or its
 * own container); a failed attempt is retried after a pause that doubles. The outputs of the successful attempt
 * (a JSON object of strings, numbers or booleans) are returned as strings.
 */
export async function runJob(options: RunOptions): Promise<RunResult> {
  const startedAt = new Date().toISOString();
  const attempts = options.retries + 1;
  let outcome: JobRun["outcome"] = "failed";
  let exitCode: number | null = null;
  let attempt = 0;
  let outputs: Record<string, string> = {};
  while (attempt < attempts) {
    attempt += 1;
    if (attempt > 1) {
      const delay = (options.retryDelayMs ?? 1_000) * 2 ** (attempt - 2);
      options.output("system", `Retrying in ${delay / 1000}s (attempt ${attempt} of ${attempts})`);
      await sleep(delay, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted) break;
    }
    await fsp.rm(options.outputFile, { force: true });
    const result = await options.attempt({
      env: { SLIPWAY_JOB_RUN_ID: options.runId, SLIPWAY_JOB_TRIGGER: options.trigger },
      outputFile: options.outputFile,
      timeoutMs: options.timeoutSeconds * 1000,
      signal: options.signal,
      onLine: options.output,
    });
    exitCode = result.code;
    if (result.aborted) {
      outcome = "canceled";
      break;
    }
    if (result.timedOut) {
      outcome = "timed_out";
      options.output("system", `The run timed out after ${options.timeoutSeconds}s (attempt ${attempt} of ${attempts})`);
      continue;
    }
    if (result.code !== 0) {
      outcome = "failed";
      options.output("system", `The run exited with code ${String(result.code ?? result.signal)} (attempt ${attempt} of ${attempts})`);
      continue;
    }
    try {
      outputs = await readOutputs(options.outputFile);
    } catch (error) {
      outcome = "failed";
      options.output("system", (error as Error).message);
      continue;
    }
    outcome = "succeeded";
    break;
  }
  const run: JobRun = { runId: options.runId, trigger: options.trigger, startedAt, finishedAt: new Date().toISOString(), outcome, exitCode, attempts: attempt };
  return { run, outputs };
}

/**
 * The largest outputs file read: a few hundred variables fit many times over. The docker runtime
 * copies at most as much out of a run's container.
 */
export const OUTPUTS_FILE_MAX_BYTES = 1024 * 1024;

/**
 * The outputs file's text, or null when the run wrote none. The job chooses what lies at that
 * path, so nothing there is trusted: not followed when a symbolic link (to the engine's token,
 * /dev/zero), not waited on when a named pipe with no writer, not read past the cap.
 */
async function readOutputsFile(file: string): Promise<string | null> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") throw new StepError("the outputs file ($SLIPWAY_OUTPUT_FILE) is a symbolic link: write the outputs into the file itself");
    throw new StepError(`the outputs file ($SLIPWAY_OUTPUT_FILE) could not be opened (${code ?? (error as Error).message})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new StepError("the outputs file ($SLIPWAY_OUTPUT_FILE) must be a regular file");
    // A second name for a file elsewhere (hard linked into the outputs directory) would be read as the run's.
    if (stat.nlink > 1) throw new StepError("the outputs file ($SLIPWAY_OUTPUT_FILE) has other hard links: write a file of its own");
    const tooLarge = () => new StepError(`the outputs file ($SLIPWAY_OUTPUT_FILE) is larger than ${OUTPUTS_FILE_MAX_BYTES / 1024 / 1024} MiB: not read`);
    if (stat.size > OUTPUTS_FILE_MAX_BYTES) throw tooLarge();
    // One byte more than the cap tells a file that grew since its size was taken.
    const buffer = Buffer.alloc(OUTPUTS_FILE_MAX_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) throw tooLarge();
    }
    return buffer.toString("utf8", 0, length);
  } finally {
    await handle.close();
  }
}

/** Where JSON.parse failed, as a line and column; never the text there, which may be anything the job put in the file. */
function whereJsonFailed(text: string, error: Error): string {
  if (error.message.startsWith("Unexpected end of JSON input")) return " (it ends before the JSON does)";
  const position = /at position (\d+)/.exec(error.message)?.[1];
  if (position === undefined) return "";
  const before = text.slice(0, Number(position));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return ` (at line ${line}, column ${column})`;
}

async function readOutputs(file: string): Promise<Record<string, string>> {
  const text = await readOutputsFile(file);
  if (text === null) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new StepError(`the outputs file ($SLIPWAY_OUTPUT_FILE) is not valid JSON${whereJsonFailed(text, error as Error)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new StepError("the outputs file ($SLIPWAY_OUTPUT_FILE) must hold a JSON object");
  const entries = Object.entries(parsed);
  if (entries.length > OUTPUTS_MAX) throw new StepError(`the outputs file ($SLIPWAY_OUTPUT_FILE) holds ${entries.length} outputs: at most ${OUTPUTS_MAX}`);
  const outputs: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (!outputKey.test(key) || key.startsWith("SLIPWAY_") || key.length > OUTPUT_KEY_MAX)
      throw new StepError(`output "${shortenText(key, 100)}" is not a variable name users may set`);
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")
      throw new StepError(`output "${key}" must be a string, number or boolean`);
    outputs[key] = String(value);
  }
  return outputs;
}

/** Describes a finished run in one line, for logs and step messages. */
export function describeRun(run: JobRun): string {
  const seconds = ((Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000).toFixed(1);
  const tries = run.attempts > 1 ? ` after ${run.attempts} attempts` : "";
  const how = { succeeded: "succeeded", failed: `failed (exit code ${String(run.exitCode)})`, timed_out: "timed out", canceled: "was canceled" }[run.outcome];
  return `run ${run.runId} ${how}${tries} in ${seconds}s`;
}

/**
 * A cron job's timer, in its time zone; croner validates the expression and the zone. A
 * scheduled time that comes while the previous run still runs is not run (`blocked`).
 */
export function scheduleCron(trigger: Extract<JobState["trigger"], { type: "cron" }>, fire: () => Promise<void>, blocked: () => void): Cron {
  return new Cron(trigger.schedule, { timezone: trigger.timeZone, protect: blocked }, fire);
}
