import type { Cron } from "croner";
import type { JobLifecycleEvent, JobServiceSpec, RuntimeServiceState } from "../protocol";
import { type Attempt, describeRun, jobState, type JobState, runJob, scheduleCron } from "./job-runs";
import { type JobRunResult, type StepContext, StepError } from "./runtime";
import type { SerialQueues } from "./serial";
import { readJson, writeJsonAtomic } from "./shared/files";

type JobContext = StepContext<JobServiceSpec>;

/** A release of a job being deployed (before the switch makes it the job's own). */
export type JobRelease = { releaseId: string; commit?: string; lastRun?: JobState["lastRun"] };

/** How a job's release runs, as its build step recorded it; the environment is the job's variables. */
export type JobLaunch = { env: Record<string, string> };

/** What a runtime supplies to run its jobs: where their files are, and one attempt of a run. */
export interface JobRunner<L extends JobLaunch> {
  /** The job's state file (its release, schedule and last run). */
  jobFile(serviceId: string): string;
  /** How the release runs; null when it has no launch file. */
  launchOf(serviceId: string, releaseId: string): Promise<L | null>;
  /** Where a run writes its outputs, on the engine's host. */
  outputFile(serviceId: string, releaseId: string, runId: string): string;
  attempt(serviceId: string, releaseId: string, launch: L): Attempt;
  /** The job moved on to a newer release: frees what only the old one needed (a checkout, an image). */
  retire(serviceId: string, releaseId: string, currentReleaseId: string): Promise<void>;
}

/**
 * The JOB services of a runtime: each job's built release, its schedule and its last run (its
 * job.json), cron timers on this engine's clock, and the runs in progress. Releases are built
 * by the runtime as applications are; this runs them through the runtime's `JobRunner`.
 */
export class ScheduledJobs<L extends JobLaunch> {
  private readonly jobs = new Map<string, JobState>();
  private readonly crons = new Map<string, Cron>();
  private readonly runs = new Map<string, AbortController>();

  constructor(
    private readonly options: {
      runner: JobRunner<L>;
      /** Writes per key, in order (shared with the runtime's state writes). */
      writes: SerialQueues;
      serviceLog: (serviceId: string, releaseId: string, text: string) => void;
    },
  ) {}

  /** Takes up a job the previous engine left (its schedule starts again). */
  async adopt(serviceId: string): Promise<void> {
    const job = await readJson(this.options.runner.jobFile(serviceId), jobState);
    if (!job) return;
    this.jobs.set(serviceId, job);
    this.schedule(job);
  }

  /** Stops the timers; a cron run in progress belongs to this engine and ends with it (the next engine runs the next one). */
  shutdown(): void {
    for (const cron of this.crons.values()) cron.stop();
    this.crons.clear();
    for (const run of this.runs.values()) run.abort();
  }

  states(): RuntimeServiceState[] {
    return [...this.jobs.values()].map((job): RuntimeServiceState => {
      const next = this.crons.get(job.serviceId)?.nextRun();
      return {
        serviceId: job.serviceId,
        releaseId: job.releaseId,
        state: job.stopped ? "stopped" : this.runs.has(job.serviceId) ? "running" : "idle",
        restarts: 0,
        ...(job.commit ? { commit: job.commit } : {}),
        ...(job.lastRun ? { lastRun: job.lastRun } : {}),
        ...(next ? { nextRunAt: next.toISOString() } : {}),
      };
    });
  }

  /**
   * Runs a job once: during its deployment (trigger "start", from the release being deployed)
   * or before its environment stops or is deleted (from the release it last deployed).
   */
  async run(ctx: JobContext, release: JobRelease | null, trigger: JobLifecycleEvent): Promise<JobRunResult> {
    const job = this.jobs.get(ctx.service.id);
    const releaseId = release?.releaseId ?? job?.releaseId;
    if (!releaseId) return { message: "The job was never deployed: nothing to run", outputs: {} };
    const launch = await this.options.runner.launchOf(ctx.service.id, releaseId);
    if (!launch) throw new StepError(`release ${releaseId} has no launch file: deploy the job again`);
    const runId = `${stamp()}-${trigger}`;
    ctx.output("system", `$ ${ctx.service.config.command}`);
    // The variables of this deployment (outputs of earlier jobs included), not those of the build.
    const variables = Object.fromEntries(ctx.service.variables.map((v) => [v.key, v.value]));
    const { run, outputs } = await runJob({
      runId,
      trigger,
      attempt: this.options.runner.attempt(ctx.service.id, releaseId, { ...launch, env: { ...launch.env, ...variables } }),
      timeoutSeconds: ctx.service.config.timeoutSeconds,
      retries: ctx.service.config.retries,
      outputFile: this.options.runner.outputFile(ctx.service.id, releaseId, runId),
      signal: ctx.signal,
      output: ctx.output,
    });
    if (release) release.lastRun = run;
    if (job) {
      job.lastRun = run;
      await this.persist(job);
    }
    if (run.outcome !== "succeeded") throw new StepError(describeRun(run));
    const names = Object.keys(outputs);
    return { message: `${describeRun(run)}${names.length ? `; outputs ${names.join(", ")}` : ""}`, outputs };
  }

  /** Makes the built release the job's own: the one its schedule and later lifecycle runs use. */
  async install(ctx: JobContext, release: JobRelease): Promise<void> {
    const previous = this.jobs.get(ctx.service.id);
    const lastRun = release.lastRun ?? previous?.lastRun;
    const job: JobState = {
      serviceId: ctx.service.id,
      name: ctx.service.name,
      releaseId: release.releaseId,
      ...(release.commit ? { commit: release.commit } : {}),
      trigger: ctx.service.config.trigger,
      timeoutSeconds: ctx.service.config.timeoutSeconds,
      retries: ctx.service.config.retries,
      stopped: false,
      ...(lastRun ? { lastRun } : {}),
    };
    this.jobs.set(job.serviceId, job);
    await this.persist(job);
    this.schedule(job);
    if (previous && previous.releaseId !== job.releaseId && !this.runs.has(job.serviceId)) await this.options.runner.retire(job.serviceId, previous.releaseId, job.releaseId);
    const next = this.crons.get(job.serviceId)?.nextRun();
    const trigger = job.trigger;
    ctx.output(
      "system",
      trigger.type === "cron"
        ? `Scheduled "${trigger.schedule}" (${trigger.timeZone})${next ? `: next run at ${next.toISOString()}` : ""}`
        : `Release ${job.releaseId} will run on the environment's ${trigger.on.join(", ")}`,
    );
  }

  async stop(ctx: JobContext): Promise<void> {
    const job = this.jobs.get(ctx.service.id);
    if (!job) return ctx.output("system", "The job was never deployed: nothing to stop");
    job.stopped = true;
    this.unschedule(job.serviceId);
    this.runs.get(job.serviceId)?.abort();
    await this.persist(job);
    ctx.output("system", job.trigger.type === "cron" ? "Schedule stopped" : "Stopped");
  }

  async resume(ctx: JobContext): Promise<void> {
    const job = this.jobs.get(ctx.service.id);
    if (!job) throw new StepError("the job has no release: deploy it first");
    job.stopped = false;
    await this.persist(job);
    this.schedule(job);
    ctx.output("system", job.trigger.type === "cron" ? "Schedule resumed" : "Nothing to restart: the job runs on its lifecycle events");
  }

  /** Drops the job (its files are the runtime's to remove); a run in progress is ended. */
  async forget(serviceId: string): Promise<void> {
    this.unschedule(serviceId);
    this.runs.get(serviceId)?.abort();
    this.jobs.delete(serviceId);
    await this.options.writes.settled(writeKey(serviceId));
  }

  private schedule(job: JobState): void {
    this.unschedule(job.serviceId);
    if (job.stopped || job.trigger.type !== "cron") return;
    try {
      this.crons.set(job.serviceId, scheduleCron(job.trigger, () => this.runScheduled(job.serviceId)));
    } catch (error) {
      this.options.serviceLog(job.serviceId, job.releaseId, `[slipway] cannot schedule this job: ${(error as Error).message}`);
    }
  }

  private unschedule(serviceId: string): void {
    this.crons.get(serviceId)?.stop();
    this.crons.delete(serviceId);
  }

  /** A cron run: output to the service's runtime log, the outcome into its state (and so the dashboard). */
  private async runScheduled(serviceId: string): Promise<void> {
    const job = this.jobs.get(serviceId);
    if (!job || job.stopped) return;
    const log = (text: string) => this.options.serviceLog(serviceId, job.releaseId, text);
    if (this.runs.has(serviceId)) return log("[slipway] skipped a scheduled run: the previous one is still running");
    const launch = await this.options.runner.launchOf(serviceId, job.releaseId).catch(() => null);
    if (!launch) return log(`[slipway] skipped a scheduled run: release ${job.releaseId} has no launch file`);
    const controller = new AbortController();
    this.runs.set(serviceId, controller);
    const runId = `${stamp()}-cron`;
    log(`[slipway] run ${runId} started`);
    try {
      const { run } = await runJob({
        runId,
        trigger: "cron",
        attempt: this.options.runner.attempt(serviceId, job.releaseId, launch),
        timeoutSeconds: job.timeoutSeconds,
        retries: job.retries,
        outputFile: this.options.runner.outputFile(serviceId, job.releaseId, runId),
        signal: controller.signal,
        output: (_fd, text) => log(text),
      });
      log(`[slipway] ${describeRun(run)}`);
      job.lastRun = run;
      if (this.jobs.get(serviceId) === job) await this.persist(job);
    } finally {
      this.runs.delete(serviceId);
    }
  }

  private persist(job: JobState): Promise<void> {
    return this.options.writes.run(writeKey(job.serviceId), () => writeJsonAtomic(this.options.runner.jobFile(job.serviceId), job));
  }
}

const writeKey = (serviceId: string) => `job:${serviceId}`;

/** A run's id starts with its time: 20261129103000. */
const stamp = () => new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
