import type { Cron } from "croner";
import type { JobLifecycleEvent, JobServiceSpec, MissedRuns, RuntimeServiceState } from "../protocol";
import { type Attempt, describeRun, jobState, type JobState, runJob, scheduleCron } from "./job-runs";
import { findMissedRuns } from "./missed-runs";
import { type JobRunResult, type StepContext, StepError } from "./runtime";
import type { SerialQueues } from "./serial";
import { readJson, writeJsonAtomic } from "./shared/files";
import type { EngineEvents } from "../engine-events";

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
      events?: EngineEvents;
    },
  ) {}

  /**
   * Takes up a job the previous engine left: its schedule starts again, and the scheduled times
   * that passed while no engine ran it are run once or skipped, as its `missedRuns` says.
   */
  async adopt(serviceId: string): Promise<void> {
    const job = await readJson(this.options.runner.jobFile(serviceId), jobState);
    if (!job) return;
    this.jobs.set(serviceId, job);
    const missed = this.noteMissedRuns(job, new Date());
    this.schedule(job);
    await this.persist(job);
    if (missed?.runId) void this.inBackground(serviceId, () => this.runScheduled(serviceId, missed.runId));
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
        ...(job.missed ? { missed: job.missed } : {}),
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
      ...(previous?.missed ? { missed: previous.missed } : {}),
    };
    this.jobs.set(job.serviceId, job);
    this.schedule(job);
    await this.persist(job);
    if (previous && previous.releaseId !== job.releaseId && !this.runs.has(job.serviceId))
      await this.options.runner.retire(job.serviceId, previous.releaseId, job.releaseId);
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
    // Times that passed while the job was stopped on purpose are not missed runs.
    this.schedule(job);
    await this.persist(job);
    ctx.output("system", job.trigger.type === "cron" ? "Schedule resumed" : "Nothing to restart: the job runs on its lifecycle events");
  }

  /** Drops the job (its files are the runtime's to remove); a run in progress is ended. */
  async forget(serviceId: string): Promise<void> {
    this.unschedule(serviceId);
    this.runs.get(serviceId)?.abort();
    this.jobs.delete(serviceId);
    await this.options.writes.settled(writeKey(serviceId));
  }

  /** Starts the job's timer; the caller persists the job (its schedule is watched from now on). */
  private schedule(job: JobState): void {
    this.unschedule(job.serviceId);
    if (job.stopped || job.trigger.type !== "cron") return;
    const serviceId = job.serviceId;
    try {
      const cron = scheduleCron(
        job.trigger,
        () =>
          this.inBackground(serviceId, async () => {
            // A time that could not be saved is told, and the run goes ahead all the same.
            await this.inBackground(serviceId, () => this.sawScheduledTime(serviceId));
            await this.runScheduled(serviceId);
          }),
        () => {
          this.options.serviceLog(serviceId, job.releaseId, "[slipway] skipped a scheduled run: the previous one is still running");
          void this.inBackground(serviceId, () => this.sawScheduledTime(serviceId));
        },
      );
      job.scheduleSeenAt = new Date().toISOString();
      this.crons.set(serviceId, cron);
    } catch (error) {
      this.options.serviceLog(job.serviceId, job.releaseId, `[slipway] cannot schedule this job: ${(error as Error).message}`);
    }
  }

  private unschedule(serviceId: string): void {
    const cron = this.crons.get(serviceId);
    if (!cron) return;
    cron.stop();
    this.crons.delete(serviceId);
    this.options.events?.emit("job:unscheduled", { serviceId });
  }

  /**
   * Records the scheduled times that passed since an engine last watched the job's schedule, and
   * what its policy does about them; the run that makes up for them (if any) is the caller's to start.
   */
  private noteMissedRuns(job: JobState, now: Date): MissedRuns | null {
    if (job.stopped || job.trigger.type !== "cron" || !job.scheduleSeenAt) return null;
    const trigger = job.trigger;
    // An expression croner refuses finds nothing here; schedule() says why in the job's log.
    const times = (() => {
      try {
        return findMissedRuns(trigger, new Date(job.scheduleSeenAt ?? now), now);
      } catch {
        return null;
      }
    })();
    if (!times) return null;
    const runOnce = trigger.missedRuns === "run-once";
    const missed: MissedRuns = {
      count: times.count,
      ...(times.countCapped ? { countCapped: true } : {}),
      firstAt: times.firstAt.toISOString(),
      lastAt: times.lastAt.toISOString(),
      action: runOnce ? "ran-once" : "skipped",
      detectedAt: now.toISOString(),
      ...(runOnce ? { runId: `${stamp(now)}-missed` } : {}),
    };
    job.missed = missed;
    const what = `${times.countCapped ? "at least " : ""}${times.count} scheduled run${times.count === 1 ? "" : "s"}`;
    const when = times.count === 1 ? `at ${missed.firstAt}` : `from ${missed.firstAt} to ${missed.lastAt}`;
    this.options.serviceLog(
      job.serviceId,
      job.releaseId,
      `[slipway] missed ${what} ${when} while no engine ran this job: ${runOnce ? `running it once now (run ${missed.runId})` : "skipped (missedRuns: skip)"}`,
    );
    return missed;
  }

  /** A scheduled time came while this engine watched: the runs missed, if it stops now, start after it. */
  private async sawScheduledTime(serviceId: string): Promise<void> {
    const job = this.jobs.get(serviceId);
    if (!job) return;
    job.scheduleSeenAt = new Date().toISOString();
    await this.persist(job);
  }

  /** A cron run (or the run that makes up for missed ones): output to the service's runtime log, the outcome into its state (and so the dashboard). */
  private async runScheduled(serviceId: string, runId = `${stamp()}-cron`): Promise<void> {
    const job = this.jobs.get(serviceId);
    if (!job || job.stopped) return;
    const log = (text: string) => this.options.serviceLog(serviceId, job.releaseId, text);
    if (this.runs.has(serviceId)) return log("[slipway] skipped a scheduled run: the previous one is still running");
    const launch = await this.options.runner.launchOf(serviceId, job.releaseId).catch(() => null);
    if (!launch) return log(`[slipway] skipped a scheduled run: release ${job.releaseId} has no launch file`);
    const controller = new AbortController();
    this.runs.set(serviceId, controller);
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
      this.options.events?.emit("job:run", { serviceId, runId, outcome: run.outcome });
    } finally {
      this.runs.delete(serviceId);
    }
  }

  /**
   * Work no one waits for (a cron tick, a missed run taken up): a failure, such as a state write
   * on a full disk, is told in the service's log instead of ending the engine as an unhandled
   * rejection; the next tick tries again. Resolves when the work is done (croner's `protect`
   * keeps a tick from starting while the previous one's promise is pending).
   */
  private inBackground(serviceId: string, work: () => Promise<void>): Promise<void> {
    return work().catch((error: unknown) => {
      this.options.serviceLog(serviceId, this.jobs.get(serviceId)?.releaseId ?? "", `[slipway] the schedule's work failed: ${(error as Error).message}`);
    });
  }

  private persist(job: JobState): Promise<void> {
    return this.options.writes.run(writeKey(job.serviceId), () => writeJsonAtomic(this.options.runner.jobFile(job.serviceId), job));
  }
}

const writeKey = (serviceId: string) => `job:${serviceId}`;

/** A run's id starts with its time: 20261129103000. */
const stamp = (at = new Date()) => at.toISOString().replace(/[-:T]/g, "").slice(0, 14);
