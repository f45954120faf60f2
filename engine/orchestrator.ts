import fs from "node:fs/promises";
import pino from "pino";
import os from "node:os";
import pLimit from "p-limit";
import type {
  DeploymentAction,
  DeploymentStep,
  DiskUsage,
  EngineTask,
  JobLifecycleEvent,
  LogStream,
  RuntimeServiceState,
  ServiceSpec,
  StepDetails,
  StepStatus,
} from "./protocol";
import { createMetricsCollector } from "./metrics-collector";
import type { MetricSample } from "./protocol/metrics";
import { describeTally } from "./protocol/failure";
import { stepsOf } from "./protocol/steps";
import type { EdgeState } from "./protocol/edge";
import { ensureRouter, handAgain, routerClient } from "./router/router-process";
import { type RouterWatch, watchRouter } from "./router/router-watch";
import { deploymentOutcome, type DeploymentOutcome, engineFiles } from "./engine-files";
import { readJson, writeJsonAtomic } from "./runtime/shared/files";
import {
  type ExecOptions,
  type ExecSession,
  type LineOrigin,
  type ReleaseHandle,
  type ServiceLog,
  type Runtime,
  type ServiceSample,
  type ServiceStep,
  type StepContext,
  StepError,
  type StepResult,
} from "./runtime/runtime";
import { environmentDatabasePorts } from "./environment-databases";
import { environmentOutputs, type EnvironmentOutputs, withOutputs } from "./job-outputs";
import { secretMasker } from "./runtime/secret-mask";
import { gitCredentialSecrets } from "./runtime/shared/git";
import { createEngineEvents, type EngineEvents } from "./engine-events";
import { planStages, type PlannedStage } from "./deployment-plan";

export type EngineReporter = {
  /** A deployment event; the agent adds seq and at if missing, batches and ships it. */
  event(
    deploymentId: string,
    event: {
      serviceId: string | null;
      step: DeploymentStep;
      status: StepStatus;
      at?: string;
      seq?: number;
    } & StepDetails,
  ): void;
  /**
   * Takes the next seq ahead of an event (where the agent numbers them): a deployment's outcome is
   * written to disk with the seq of its event, so that reporting it again for a re-delivered task
   * sends the same event, which the control plane stores once.
   */
  nextSeq?(): number;
  /** One line of output (build output: stream kind "deployment"; app output: kind "service"), with its origin when it can be read again. */
  log(stream: LogStream, fd: "stdout" | "stderr" | "system", text: string, at?: string, origin?: LineOrigin): void;
};

export interface Engine {
  /** What the engine tells observers as it works (engine/engine-events.ts). */
  readonly events: EngineEvents;
  /** Adopt releases that still run (state on disk), make sure the router process runs, start supervising and tailing runtime logs. */
  start(): Promise<void>;
  /** Run a task. Idempotent by deploymentId; never throws for deployment failures: they are reported as events. */
  execute(task: EngineTask): Promise<void>;
  /** Stop at the next safe point, keep the previous release serving, report `deployment canceled`. */
  cancel(deploymentId: string): void;
  activeDeployments(): string[];
  services(): RuntimeServiceState[];
  /** Stop supervising/tailing; leave the apps and the router running. */
  shutdown(): Promise<void>;
  /** Starts a process (a shell) in a service's live release, where the runtime can. */
  exec?(serviceId: string, argv: string[], options: ExecOptions): Promise<ExecSession>;
  /** A metrics sample of a service's live release, where the runtime can. */
  sample?(serviceId: string): Promise<ServiceSample>;
  /** The services this engine keeps files of, with their size (leftovers are found from it). */
  inventory?(): Promise<DiskUsage[]>;
  /** Stops and removes everything of services that no longer exist (the reaper's leftovers). */
  purge?(serviceIds: string[]): Promise<void>;
  /** Samples of every live release with the router's traffic figures since the previous call (engine/metrics-collector.ts). */
  metrics?(): Promise<MetricSample[]>;
  /** Hands the router the cluster's custom domains, challenges and certificates (it keeps them on disk). */
  applyEdge?(state: EdgeState): Promise<void>;
}

/** What the engine hands the runtime it creates. */
export type RuntimeHooks = {
  logger: pino.Logger;
  serviceLog: ServiceLog;
  events: EngineEvents;
};

export type EngineOptions = {
  home: string;
  routerPort: number;
  routerHost?: string;
  /** The router's HTTPS port for custom domains; none: plain HTTP only. */
  routerHttpsPort?: number;
  /** How long the router holds a sleeping service's requests, and when a browser gets the waiting page (SLIPWAY_WAKE_*). */
  routerWake?: { timeoutMs: number; pageAfterMs: number };
  /** Connections the router holds open at once (SLIPWAY_ROUTER_MAX_CONNECTIONS); the router's default otherwise. */
  routerMaxConnections?: number;
  reporter: EngineReporter;
  logger?: pino.Logger;
  /** Creates the runtime; orchestration (steps, order, events, cancel, idempotency) is the same for every runtime. */
  runtime: (hooks: RuntimeHooks) => Runtime<ServiceSpec>;
  /** Clone `file://` URLs and paths on this host (the engine's own setting; the control plane cannot turn it on). */
  allowLocalRepositories?: boolean;
  /** How many services the engine deploys at once, over all its deployments (SLIPWAY_ENGINE_CONCURRENCY); its host's cores by default. */
  concurrency?: number;
  /** Whether the engine runs its router process: false for a kubernetes cluster, whose Ingress or Gateway routes. */
  router?: boolean;
  /** Secrets of the engine's own configuration (credentials in its registry URLs): masked in deployments' output like secret variables. */
  configSecrets?: readonly string[];
};

/** The clone's message: which branch it cloned (the repository's default one when the service names none). */
function describeClone(service: ServiceSpec, defaultBranch: string | null): string | undefined {
  if (defaultBranch !== null) return `branch ${defaultBranch}, the repository's default`;
  const ref = service.kind === "APPLICATION" || service.kind === "JOB" ? service.config.git.ref : undefined;
  return ref && "branch" in ref ? `branch ${ref.branch}` : undefined;
}

/** Raised inside a deployment to end it; the step's event has been reported already. */
class DeploymentStopped extends Error {
  constructor(
    readonly status: "failed" | "canceled",
    message: string,
  ) {
    super(message);
  }
}

const SHUTDOWN = "engine shutdown";

/** What became of a deployment's services once its stages ran. */
type StagesRun = { done: number; failures: { service: string; message: string }[]; skipped: number };

const VERBS = { DEPLOY: "deployed", STOP: "stopped", RESTART: "restarted", DELETE: "deleted" } as const;

/**
 * A deployment's outcome from what its services did. A failed one says which services failed,
 * how many made it and how many never started, in the words of its page (describeTally), before
 * the first failure's message, which may end with the build's last lines
 * (engine/protocol/failure.ts reads them from the step's own event).
 */
function describeOutcome(action: DeploymentAction, total: number, run: StagesRun): Omit<DeploymentOutcome, "deploymentId" | "finishedAt"> {
  const [first] = run.failures;
  if (!first) return { status: "succeeded", message: `${VERBS[action]} ${total} service${total === 1 ? "" : "s"}` };
  const tally = { total, failed: run.failures.map((failure) => failure.service), done: run.done, notStarted: run.skipped };
  return { status: "failed", message: `${describeTally(action, tally, (name) => name)}; ${first.message}` };
}

/**
 * The engine of any cluster: orchestration (steps, order, events, cancel, rollback, idempotency
 * by deployment id, job outputs) over the runtime it is given. engine/local-engine.ts and
 * engine/docker-engine.ts pick the runtime.
 */
export function createEngine(options: EngineOptions): Engine {
  const logger = options.logger ?? pino({ name: "slipway-engine", level: "silent" });
  const { reporter } = options;
  const paths = engineFiles(options.home);
  const events = createEngineEvents();
  const runtime = options.runtime({
    logger,
    events,
    serviceLog: (serviceId, releaseId, text, fd = "stdout", at, origin) => reporter.log({ kind: "service", serviceId, releaseId }, fd, text, at, origin),
  });
  const runtimeKinds: readonly string[] = runtime.serviceKinds ?? ["APPLICATION"];
  const running = new Map<string, { promise: Promise<void>; controller: AbortController }>();
  const jobOutputs = environmentOutputs(paths);
  // One bound for the whole engine: builds compete for the same cores whichever deployment runs them.
  const limit = pLimit(options.concurrency ?? os.availableParallelism());
  let started: Promise<void> | null = null;
  /** Restarts the router when it dies, from the engine's start until its shutdown. */
  let routerWatch: RouterWatch | null = null;

  const now = () => new Date().toISOString();

  async function runDeployment(task: EngineTask, signal: AbortSignal): Promise<void> {
    const { deploymentId, snapshot } = task;
    const log = logger.child({ deploymentId });
    const report = (serviceId: string | null, step: DeploymentStep, status: StepStatus, extra: StepDetails = {}) =>
      reporter.event(deploymentId, { serviceId, step, status, at: now(), ...extra });

    report(null, "deployment", "started", { message: `${snapshot.action} ${snapshot.services.map((service) => service.name).join(", ")}` });
    const outputs = await jobOutputs.read(snapshot.environment.id);
    const databasePorts = await environmentDatabasePorts(paths, snapshot);
    let outcome: Omit<DeploymentOutcome, "deploymentId" | "finishedAt">;
    try {
      // Outputs are read when a service starts: a job's reach every service after it.
      const run = await runStages(task, planStages(snapshot), signal, report, (service) =>
        runService(task, withOutputs(service, outputs.current()), signal, report, outputs, databasePorts),
      );
      outcome = describeOutcome(snapshot.action, snapshot.services.length, run);
    } catch (error) {
      if (signal.reason === SHUTDOWN) {
        // Not an outcome: the control plane re-delivers the task to the next engine.
        log.info("deployment interrupted by engine shutdown");
        return;
      }
      if (!(error instanceof DeploymentStopped)) log.error({ err: error }, "deployment crashed");
      outcome =
        error instanceof DeploymentStopped
          ? { status: error.status, message: error.message }
          : { status: "failed", message: `internal error: ${(error as Error).message}` };
    }
    const done: DeploymentOutcome = { deploymentId, ...outcome, finishedAt: now(), seq: reporter.nextSeq?.() };
    await writeJsonAtomic(paths.deploymentFile(deploymentId), done);
    reportOutcome(done);
  }

  /**
   * Runs the stages one after the other and each stage's waves in turn, a wave's services side by
   * side under the engine's concurrency (issue 16). A service that fails fails its stage: the
   * rest of its wave finishes, what waits for it (later waves, later stages) does not start and
   * is reported `skipped` with the reason. A cancel ends the deployment at the end of its wave.
   */
  async function runStages(
    task: EngineTask,
    stages: PlannedStage[],
    signal: AbortSignal,
    report: (serviceId: string | null, step: DeploymentStep, status: StepStatus, extra?: StepDetails) => void,
    runOne: (service: ServiceSpec) => Promise<void>,
  ): Promise<StagesRun> {
    const run: StagesRun = { done: 0, failures: [], skipped: 0 };
    let canceled: DeploymentStopped | null = null;
    let laterStages: string | null = null;
    const attempt = async (service: ServiceSpec) => {
      try {
        await runOne(service);
        run.done += 1;
      } catch (error) {
        if (error instanceof DeploymentStopped && error.status === "canceled") canceled ??= error;
        else if (error instanceof DeploymentStopped) run.failures.push({ service: service.name, message: error.message });
        else {
          logger.error({ err: error, deploymentId: task.deploymentId, service: service.name }, "service crashed");
          run.failures.push({ service: service.name, message: `${service.name}: internal error: ${(error as Error).message}` });
        }
      }
    };
    const skip = (service: ServiceSpec, reason: string) => {
      run.skipped += 1;
      report(service.id, stepsOf(task.snapshot.action, service.kind)[0]!, "skipped", { message: reason });
    };
    for (const stage of stages) {
      const failedBefore = run.failures.length;
      let laterWaves: string | null = null;
      for (const wave of stage.waves) {
        const blocked = laterStages ?? laterWaves;
        if (blocked) {
          for (const service of wave) skip(service, blocked);
          continue;
        }
        const before = run.failures.length;
        await Promise.all(wave.map((service) => limit(() => attempt(service))));
        if (canceled) throw canceled;
        if (signal.aborted) throw new DeploymentStopped("canceled", "deployment canceled before it finished");
        const failed = run.failures.slice(before).map((failure) => failure.service);
        if (failed.length > 0) laterWaves = `not started: it waits for ${failed.join(", ")}, which failed`;
      }
      const failed = run.failures.slice(failedBefore).map((failure) => failure.service);
      if (failed.length > 0 && !laterStages) laterStages = `not started: stage ${stage.name} failed (${failed.join(", ")})`;
    }
    return run;
  }

  /** A deployment's last event, from its outcome (the same event each time it is reported, when the outcome has its seq). */
  function reportOutcome(done: DeploymentOutcome): void {
    const { deploymentId, status, message, finishedAt, seq } = done;
    reporter.event(deploymentId, { serviceId: null, step: "deployment", status, message, at: finishedAt, ...(seq === undefined ? {} : { seq }) });
  }

  async function runService(
    task: EngineTask,
    service: ServiceSpec,
    signal: AbortSignal,
    report: (serviceId: string | null, step: DeploymentStep, status: StepStatus, extra?: StepDetails) => void,
    outputs: EnvironmentOutputs,
    databasePorts: number[],
  ): Promise<void> {
    // The repository's credentials are as secret as the secret variables, wherever git or a build prints them.
    const gitSecrets = (service.kind === "APPLICATION" || service.kind === "JOB" ? gitCredentialSecrets(service.config.git) : []).map((value) => ({
      key: "git credentials",
      value,
      secret: true,
    }));
    const engineSecrets = (options.configSecrets ?? []).map((value) => ({ key: "engine configuration", value, secret: true }));
    const mask = secretMasker([...service.variables, ...gitSecrets, ...engineSecrets]);
    const stream: LogStream = { kind: "deployment", deploymentId: task.deploymentId, serviceId: service.id };
    const ctx: StepContext<ServiceSpec> = {
      deploymentId: task.deploymentId,
      service,
      scope: { organizationId: task.snapshot.organizationId, project: task.snapshot.project, environment: task.snapshot.environment },
      signal,
      trusted: task.trusted ?? false,
      isolateLoopback: task.isolateLoopback ?? false,
      noCache: task.snapshot.noCache ?? false,
      databasePorts,
      output: (fd, text) => reporter.log(stream, fd, mask(text), now()),
      git: { allowLocalRepositories: options.allowLocalRepositories ?? false, sshKnownHostsFile: paths.sshKnownHostsFile },
      ...(task.kubernetesBuild ? { kubernetesBuild: task.kubernetesBuild } : {}),
    };

    /** Runs one step between its started and succeeded/failed/canceled events. */
    const step = async <T>(name: ServiceStep, fn: () => Promise<T>, describe?: (result: T) => Omit<StepDetails, "durationMs">): Promise<T> => {
      if (signal.aborted) throw new DeploymentStopped("canceled", `deployment canceled before ${name} of ${service.name}`);
      const begin = performance.now();
      report(service.id, name, "started");
      try {
        const result = await fn();
        report(service.id, name, "succeeded", { durationMs: Math.round(performance.now() - begin), ...describe?.(result) });
        return result;
      } catch (error) {
        const durationMs = Math.round(performance.now() - begin);
        if (signal.aborted) {
          report(service.id, name, "canceled", { durationMs });
          throw new DeploymentStopped("canceled", `deployment canceled during ${name} of ${service.name}`);
        }
        const message = mask(error instanceof StepError ? error.message : `internal error: ${(error as Error).message}`);
        report(service.id, name, "failed", { durationMs, message });
        throw new DeploymentStopped("failed", `${service.name}: ${name} failed: ${message}`);
      }
    };

    const plan = stepsOf(task.snapshot.action, service.kind);
    if (!runtimeKinds.includes(service.kind)) {
      const unsupported = task.snapshot.action === "DEPLOY" ? "start" : plan[0]!;
      return step(unsupported, () => Promise.reject(new StepError(`${service.kind} services are not supported by the ${runtime.name ?? "local"} runtime yet`)));
    }

    /** A lifecycle JOB's run on this event; its outputs become variables of the services after it. */
    const runLifecycleJob = async (event: JobLifecycleEvent, release: ReleaseHandle | null) => {
      if (service.kind !== "JOB" || service.config.trigger.type !== "lifecycle" || !service.config.trigger.on.includes(event)) return;
      if (!runtime.runJob) throw new DeploymentStopped("failed", `${service.name}: the ${runtime.name ?? "local"} runtime cannot run jobs`);
      // The keys its outputs set go to the control plane, which lists them beside the variables users set.
      const result = await step(
        "run",
        () => runtime.runJob!(ctx, release, event),
        (done) => ({ message: done.message, ...(event === "start" ? { outputKeys: Object.keys(done.outputs) } : {}) }),
      );
      if (event === "start") await outputs.record(service.id, result.outputs);
    };

    switch (task.snapshot.action) {
      case "STOP":
        await runLifecycleJob("stop", null);
        return step("stop", () => runtime.stop(ctx));
      case "RESTART":
        return step("restart", () => runtime.restart(ctx));
      case "DELETE":
        await runLifecycleJob("delete", null);
        await step("delete", () => runtime.delete(ctx));
        return outputs.forget(service.id);
      case "DEPLOY": {
        const release = await runtime.newRelease(ctx);
        let live = false;
        try {
          // The plan (engine/protocol/steps.ts) says which kinds have a repository to clone, and which a server to start.
          if (plan.includes("clone"))
            await step(
              "clone",
              () => runtime.clone(ctx, release),
              ({ commit, defaultBranch, info }) => ({ commit, message: describeClone(service, defaultBranch), ...(info ? { commitInfo: info } : {}) }),
            );
          await step(
            "build",
            () => runtime.build(ctx, release),
            (result: void | StepResult) => ({ message: result?.message }),
          );
          if (!plan.includes("start")) {
            // A job has no server: it runs (lifecycle "start") and its release becomes the one its schedule and later events use.
            await runLifecycleJob("start", release);
            await step("switch", () => runtime.switchTo(ctx, release));
            live = true;
            return;
          }
          await step("start", () => runtime.startRelease(ctx, release));
          await step("health_check", () => runtime.healthCheck(ctx, release));
          await step("switch", () => runtime.switchTo(ctx, release));
          live = true;
        } finally {
          // The previous release keeps serving: a release that never went live leaves nothing behind.
          if (!live) await runtime.discard(release);
        }
        // After the switch the new release serves; draining finishes even when a cancel arrives.
        const begin = performance.now();
        report(service.id, "drain", "started");
        try {
          await runtime.drain(ctx, release);
          report(service.id, "drain", "succeeded", { durationMs: Math.round(performance.now() - begin) });
        } catch (error) {
          const message = mask((error as Error).message);
          report(service.id, "drain", "failed", { durationMs: Math.round(performance.now() - begin), message });
          throw new DeploymentStopped("failed", `${service.name}: drain failed: ${message}`);
        }
      }
    }
  }

  const engine: Engine = {
    events,
    start() {
      started ??= (async () => {
        await fs.mkdir(paths.deploymentsDir, { recursive: true });
        // A kubernetes cluster runs no router: its Ingress or Gateway routes, and nothing is watched.
        if (!(options.router ?? true)) return runtime.start();
        const router = {
          home: options.home,
          port: options.routerPort,
          host: options.routerHost ?? "127.0.0.1",
          httpsPort: options.routerHttpsPort,
          wakeTimeoutMs: options.routerWake?.timeoutMs,
          wakePageAfterMs: options.routerWake?.pageAfterMs,
          maxConnections: options.routerMaxConnections,
        };
        const pid = await ensureRouter(router);
        await runtime.start();
        routerWatch = watchRouter({ pid, restart: () => ensureRouter(router), handAgain: () => handAgain(options.home), logger });
      })();
      return started;
    },

    execute(task) {
      const active = running.get(task.deploymentId);
      if (active) return active.promise;
      const controller = new AbortController();
      const promise = (async () => {
        await engine.start();
        const done = await readJson(paths.deploymentFile(task.deploymentId), deploymentOutcome).catch(() => null);
        if (done) {
          // Already finished (a re-delivered task): say so again, with the same event, and do nothing else.
          reportOutcome(done);
          return;
        }
        await runDeployment(task, controller.signal);
      })()
        .catch((error: unknown) => {
          logger.error({ err: error, deploymentId: task.deploymentId }, "deployment could not run");
          reporter.event(task.deploymentId, {
            serviceId: null,
            step: "deployment",
            status: "failed",
            message: `engine error: ${(error as Error).message}`,
            at: now(),
          });
        })
        .finally(() => running.delete(task.deploymentId));
      running.set(task.deploymentId, { promise, controller });
      return promise;
    },

    cancel(deploymentId) {
      running.get(deploymentId)?.controller.abort("canceled");
    },

    activeDeployments: () => [...running.keys()],
    services: () => runtime.services(),
    ...(runtime.exec ? { exec: runtime.exec.bind(runtime) } : {}),
    ...(runtime.sample ? { sample: runtime.sample.bind(runtime) } : {}),
    ...(runtime.inventory ? { inventory: runtime.inventory.bind(runtime) } : {}),
    ...(runtime.purge ? { purge: runtime.purge.bind(runtime) } : {}),
    ...(runtime.sample
      ? { metrics: createMetricsCollector({ home: options.home, services: () => runtime.services(), sample: runtime.sample.bind(runtime) }) }
      : {}),

    async applyEdge(state) {
      await engine.start();
      await routerClient(options.home).putEdge(state);
    },

    async shutdown() {
      for (const { controller } of running.values()) controller.abort(SHUTDOWN);
      await Promise.all([...running.values()].map(({ promise }) => promise));
      if (started) await started.catch(() => undefined);
      await routerWatch?.stop();
      await runtime.shutdown();
    },
  };
  return engine;
}
