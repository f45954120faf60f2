import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { DiskUsage, GitServiceSpec, JobLifecycleEvent, JobServiceSpec, RuntimeServiceState, ServiceKind, ServiceSpec } from "../protocol";
import type { RouterClient } from "../router/router-process";
import { upstreamKey } from "../router/routes";
import { IdleSleep, type IdleSleepOptions, sleepSettingOf } from "./idle-sleep";
import type { LiveRelease, PendingRelease, ReleaseStore, ServiceRecord } from "./release-store";
import type { ExecOptions, ExecSession, JobRunResult, ReleaseHandle, Runtime, ServiceSample, StepContext, StepResult } from "./runtime";
import { StepError } from "./runtime";
import type { JobLaunch, ScheduledJobs } from "./scheduled-jobs";
import { appDirectory, type ClonedSource, cloneRepository } from "./shared/git";
import { cloneNetworkEnv, engineBaseEnv } from "./shared/processes-env";

/**
 * What a runtime supplies to the release lifecycle (ReleaseRuntime): how a release is built,
 * started, health-checked, stopped and exec'd into. `R` is its live release (a process, a
 * container), `St` what it keeps per service, `P` a release being deployed.
 */
export interface ReleaseDriver<S extends ServiceSpec, R extends LiveRelease, St extends ServiceRecord<R>, P extends PendingRelease<R>> {
  /** Adopts what the previous engine left running (states, jobs, logs) and starts supervising. */
  adopt(): Promise<void>;
  /** Stops supervising and following logs; what runs keeps running. */
  shutdown(): Promise<void>;
  /** A new release with an empty directory to clone and build in. */
  createRelease(ctx: StepContext<S>, releaseId: string): Promise<P>;
  build(ctx: StepContext<S>, release: P): Promise<void | StepResult>;
  /** Starts the release; a runtime that keeps the running one instead (nothing changed) marks the release `reused`. */
  launch(ctx: StepContext<S>, release: P): Promise<R>;
  /**
   * Resolves once the release serves, with the instance that does when the driver had to start
   * another in its place (a port taken from under it); throws StepError saying why it does not.
   */
  healthCheck(ctx: StepContext<S>, live: R): Promise<R | void>;
  /** Stops a release for good and frees what it holds. */
  stopRelease(serviceId: string, live: R): Promise<void>;
  /** A second instance of the live release, with the service's current variables, for a zero-downtime restart. */
  relaunch(ctx: StepContext<S>, current: R): Promise<R>;
  /** A relaunch whose fresh instance failed its health check: `current` keeps serving, as it was. */
  relaunchFailed?(ctx: StepContext<S>, current: R): Promise<void>;
  /** A restart done another way (a database, whose data allows one server at a time), or null for the zero-downtime one. */
  ownRestart?(ctx: StepContext<S>): Promise<void> | null;
  /** The service's state once `live` serves it, from the state it had. */
  liveState(ctx: StepContext<S>, live: R, previous: St | undefined): St;
  /** Under the service's lock, before its state is written: `state.current` serves from now on. */
  wentLive?(state: St, how: "switch" | "restart"): void;
  /** A deploy, stop or delete decided: automatic work on the service (a pending crash restart) is called off. */
  callOff?(serviceId: string): void;
  /** Stops the live release and keeps it, to start again on RESTART; the state says stopped already. */
  halt(ctx: StepContext<S>, state: St, current: R): Promise<void>;
  /** After a drain: frees what the replaced release left behind (its checkout, old images). */
  drained?(ctx: StepContext<S>, previous: R | null, release: ReleaseHandle): Promise<void>;
  /** A release that never went live (its process, if any, is stopped already): undoes the rest of its steps. */
  discarded?(handle: ReleaseHandle, release: P | undefined): Promise<void>;
  /** The service is being deleted (`service` null: purged as a leftover): stops whatever runs of it; returns what will be gone, in words. */
  removeReleases(serviceId: string, state: St | undefined, service: S | null): Promise<string>;
  /** Removes the service's files, once its state writes are done. */
  removeFiles(serviceId: string): Promise<void>;
  /** Stops the live release to sleep when idle (idle-sleep.ts); runtimes without it never sleep. */
  sleep?(state: St, current: R): Promise<void>;
  /** Starts a sleeping release again, resolving once it passes its health check; stops it and throws when it does not. */
  wake?(state: St, current: R): Promise<R>;
  /** Where the router sends a release's traffic, in words. */
  describeUpstream(live: R): string;
  exec?(serviceId: string, argv: string[], options: ExecOptions): Promise<ExecSession>;
  sample?(serviceId: string): Promise<ServiceSample>;
  /** The services whose files the runtime keeps, with their size (leftovers are purged from it). */
  inventory?(): Promise<DiskUsage[]>;
}

const SERVICE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether a name (a directory, a purge request's entry) is a service id: only those become paths to remove. */
export function isServiceId(name: string): boolean {
  return SERVICE_ID.test(name);
}

/**
 * The release lifecycle every runtime shares: a new release is cloned, built, started and
 * health-checked beside the live one, the router switches to it, the replaced one drains and
 * stops (zero downtime); a release that never goes live leaves nothing behind. JOB services
 * are built the same way and then run by ScheduledJobs. Orchestration drives it through the
 * `Runtime` interface; the runtime-specific part is its ReleaseDriver.
 */
export class ReleaseRuntime<
  S extends ServiceSpec,
  R extends LiveRelease,
  St extends ServiceRecord<R>,
  P extends PendingRelease<R>,
  L extends JobLaunch,
> implements Runtime<S> {
  readonly name: string;
  readonly serviceKinds: readonly ServiceKind[];
  /** What each switched release replaced, until its drain step stops it. */
  private readonly replaced = new Map<string, R | null>();
  readonly exec?: (serviceId: string, argv: string[], options: ExecOptions) => Promise<ExecSession>;
  readonly sample?: (serviceId: string) => Promise<ServiceSample>;
  readonly inventory?: () => Promise<DiskUsage[]>;
  readonly purge?: (serviceIds: string[]) => Promise<void>;
  private readonly idle: IdleSleep<R, St, P> | null;

  constructor(
    private readonly parts: {
      name: string;
      serviceKinds: readonly ServiceKind[];
      store: ReleaseStore<R, St, P>;
      driver: ReleaseDriver<S, R, St, P>;
      jobs: ScheduledJobs<L>;
      router: Pick<RouterClient, "stats" | "wakes">;
      /** Sleep when idle (issue 16): on when given and the driver can sleep and wake releases. */
      sleep?: IdleSleepOptions;
      /** How long a replaced release may finish its requests. */
      drainTimeoutMs?: number;
      /** Leftovers purged are logged here. */
      onPurged?: (serviceId: string) => void;
    },
  ) {
    this.name = parts.name;
    this.serviceKinds = parts.serviceKinds;
    const { driver } = parts;
    if (driver.exec) this.exec = driver.exec.bind(driver);
    if (driver.sample) this.sample = driver.sample.bind(driver);
    if (driver.inventory) {
      this.inventory = driver.inventory.bind(driver);
      this.purge = (serviceIds) => this.purgeServices(serviceIds);
    }
    const { sleep, wake } = driver;
    this.idle =
      parts.sleep && sleep && wake
        ? new IdleSleep<R, St, P>({
            ...parts.sleep,
            store: parts.store,
            driver: { sleep: sleep.bind(driver), wake: wake.bind(driver), ...(driver.wentLive ? { wentLive: driver.wentLive.bind(driver) } : {}) },
            router: parts.router,
            drained: (port) => this.waitUntilDrained(port),
          })
        : null;
  }

  async start(): Promise<void> {
    await this.parts.store.adoptKnown();
    await this.parts.driver.adopt();
    this.idle?.start();
  }

  async shutdown(): Promise<void> {
    await this.idle?.shutdown();
    this.parts.jobs.shutdown();
    await this.parts.driver.shutdown();
    await this.parts.store.writes.idle();
  }

  services(): RuntimeServiceState[] {
    const live = [...this.parts.store.values()].flatMap((state): RuntimeServiceState[] =>
      state.current
        ? [
            {
              serviceId: state.serviceId,
              releaseId: state.current.releaseId,
              state: state.status,
              restarts: state.restarts,
              commit: state.current.commit,
              port: state.current.port,
              ...(state.lastRestart ? { lastRestart: state.lastRestart } : {}),
            },
          ]
        : [],
    );
    return [...this.parts.jobs.states(), ...live];
  }

  // ---- deploy steps -------------------------------------------------------------------------

  async newRelease(ctx: StepContext<S>): Promise<ReleaseHandle> {
    const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
    const release = await this.parts.driver.createRelease(ctx, `${stamp}-${ctx.deploymentId.slice(0, 8)}`);
    this.parts.store.addPending(release);
    // From its first deployment on, the service's hostnames are its own, live or not (a JOB serves none).
    if (ctx.service.kind !== "JOB" && ctx.service.domains.length > 0) await this.parts.store.know(ctx.service);
    return release;
  }

  async clone(ctx: StepContext<S>, handle: ReleaseHandle): Promise<ClonedSource> {
    const release = this.parts.store.pendingOf(handle);
    const { config } = gitService(ctx.service);
    const checkout = path.join(release.dir, "src");
    const cloned = await cloneRepository({
      git: config.git,
      policy: ctx.git ?? { allowLocalRepositories: false },
      dir: checkout,
      env: { ...engineBaseEnv(), ...cloneNetworkEnv() },
      timeoutMs: config.buildTimeoutSeconds * 1000,
      signal: ctx.signal,
      output: ctx.output,
    });
    release.commit = cloned.commit;
    release.appDir = await appDirectory(checkout, config.git.rootDirectory);
    return cloned;
  }

  build(ctx: StepContext<S>, handle: ReleaseHandle): Promise<void | StepResult> {
    return this.parts.driver.build(ctx, this.parts.store.pendingOf(handle));
  }

  async startRelease(ctx: StepContext<S>, handle: ReleaseHandle): Promise<void> {
    const release = this.parts.store.pendingOf(handle);
    release.live = await this.parts.driver.launch(ctx, release);
  }

  async healthCheck(ctx: StepContext<S>, handle: ReleaseHandle): Promise<void> {
    const release = this.parts.store.pendingOf(handle);
    if (!release.live) throw new Error("health check before start");
    const replacement = await this.parts.driver.healthCheck(ctx, release.live);
    if (replacement) release.live = replacement;
  }

  async switchTo(ctx: StepContext<S>, handle: ReleaseHandle): Promise<void> {
    const { store, driver } = this.parts;
    const release = store.pendingOf(handle);
    const job = jobContext(ctx);
    if (job) {
      await this.parts.jobs.install(job, release);
      store.takePending(release);
      return;
    }
    const live = release.live;
    if (!live) throw new Error("switch before start");
    await store.withLock(ctx.service.id, async () => {
      const previous = store.get(ctx.service.id);
      const state = driver.liveState(ctx, live, previous);
      state.sleep = sleepSettingOf(ctx.service);
      if (!state.sleep) delete state.sleep;
      store.set(state);
      this.idle?.awake(ctx.service.id);
      driver.wentLive?.(state, "switch");
      await store.persist(ctx.service.id);
      // Refused: the previous release stays the service's, and the caller's discard stops the new one.
      await this.routeOrRestore(ctx.service.id, previous);
      store.takePending(release);
      // A release that kept the running one (a database whose configuration did not change) replaced nothing.
      this.replaced.set(release.releaseId, release.reused ? null : (previous?.current ?? null));
    });
    ctx.output("system", `Router now sends ${ctx.service.domains.join(", ") || "(no domains)"} to ${driver.describeUpstream(live)}`);
  }

  async drain(ctx: StepContext<S>, handle: ReleaseHandle): Promise<void> {
    const previous = this.replaced.get(handle.releaseId) ?? null;
    this.replaced.delete(handle.releaseId);
    if (!previous) {
      ctx.output("system", "No previous release to drain");
    } else {
      const open = await this.waitUntilDrained(previous.port);
      ctx.output(
        "system",
        open === 0
          ? `Previous release ${previous.releaseId} drained`
          : `Stopping ${previous.releaseId} with ${open} requests still open after the drain timeout`,
      );
      await this.parts.driver.stopRelease(ctx.service.id, previous);
    }
    await this.parts.driver.drained?.(ctx, previous, handle);
  }

  async discard(handle: ReleaseHandle): Promise<void> {
    const release = this.parts.store.takePending(handle);
    if (release?.live && !release.reused) await this.parts.driver.stopRelease(handle.serviceId, release.live);
    await this.parts.driver.discarded?.(handle, release);
  }

  // ---- jobs -----------------------------------------------------------------------------------

  /** Runs a JOB once on a lifecycle event (scheduled-jobs.ts): from the release being deployed, or the one it last deployed. */
  runJob(ctx: StepContext<S>, handle: ReleaseHandle | null, trigger: JobLifecycleEvent): Promise<JobRunResult> {
    const job = jobContext(ctx);
    if (!job) throw new Error("only JOB services run");
    return this.parts.jobs.run(job, handle ? this.parts.store.pendingOf(handle) : null, trigger);
  }

  // ---- whole-service actions ----------------------------------------------------------------

  async stop(ctx: StepContext<S>): Promise<void> {
    const job = jobContext(ctx);
    if (job) return this.parts.jobs.stop(job);
    const { store, driver } = this.parts;
    await store.withLock(ctx.service.id, async () => {
      const state = store.get(ctx.service.id);
      const current = state?.current;
      if (!state || !current) return ctx.output("system", "The service has no release: nothing to stop");
      driver.callOff?.(ctx.service.id);
      const asleep = state.status === "sleeping";
      const before = { ...state };
      // Marked stopped before the release stops, so supervision does not take the exit for a crash.
      state.status = "stopped";
      await store.persist(ctx.service.id);
      await this.routeOrRestore(ctx.service.id, before);
      // A sleeping release is stopped already; it starts again on RESTART, as a stopped one does.
      if (asleep) return ctx.output("system", `Stopped release ${current.releaseId} (it was asleep)`);
      await driver.halt(ctx, state, current);
    });
  }

  /** A fresh instance of the live release; the router switches once it is healthy, then the old one drains (zero downtime). */
  async restart(ctx: StepContext<S>): Promise<void> {
    const job = jobContext(ctx);
    if (job) return this.parts.jobs.resume(job);
    const { store, driver } = this.parts;
    const own = driver.ownRestart?.(ctx);
    if (own) return own;
    const state = store.get(ctx.service.id);
    const current = state?.current;
    if (!state || !current) throw new StepError("the service has no release to restart: deploy it first");
    const relaunched = await driver.relaunch(ctx, current);
    let fresh: R;
    try {
      fresh = (await driver.healthCheck(ctx, relaunched)) ?? relaunched;
    } catch (error) {
      await driver.stopRelease(ctx.service.id, relaunched);
      await driver.relaunchFailed?.(ctx, current);
      throw error;
    }
    let replaced: R | null;
    try {
      replaced = await store.withLock(ctx.service.id, async () => {
        // The instance live now: a crash restart while the fresh one was checked replaced `current`.
        const live = store.get(ctx.service.id) ?? state;
        const before = { ...live };
        live.current = fresh;
        live.status = "running";
        live.sleep = sleepSettingOf(ctx.service);
        if (!live.sleep) delete live.sleep;
        driver.wentLive?.(live, "restart");
        this.idle?.awake(ctx.service.id);
        await store.persist(ctx.service.id);
        await this.routeOrRestore(ctx.service.id, before);
        return before.current;
      });
    } catch (error) {
      // The release that was live still serves: the fresh instance goes, or nothing would ever stop it.
      await driver.stopRelease(ctx.service.id, fresh);
      throw error;
    }
    if (!replaced) return;
    await this.waitUntilDrained(replaced.port);
    await driver.stopRelease(ctx.service.id, replaced);
  }

  async delete(ctx: StepContext<S>): Promise<void> {
    ctx.output("system", await this.removeService(ctx.service.id, ctx.service));
  }

  /** Stops whatever runs of the service (release, schedule, run) and removes its route and files. */
  private removeService(serviceId: string, service: S | null): Promise<string> {
    const { store, driver, jobs } = this.parts;
    return store.withLock(serviceId, async () => {
      await jobs.forget(serviceId);
      driver.callOff?.(serviceId);
      const state = store.delete(serviceId);
      // Refused: the state comes back, so the retried removal still finds the release to stop.
      await this.routeOrRestore(serviceId, state);
      const removed = await driver.removeReleases(serviceId, state, service);
      await store.writes.settled(serviceId);
      await driver.removeFiles(serviceId);
      return removed;
    });
  }

  private async purgeServices(serviceIds: string[]): Promise<void> {
    for (const serviceId of serviceIds.filter(isServiceId)) {
      await this.removeService(serviceId, null);
      this.parts.onPurged?.(serviceId);
    }
  }

  /**
   * Hands the router the table with the service's new state. The router is a process of its own
   * (engine/router/): when it is down or refuses the table, the operation fails saying so and the
   * service's state goes back to `before`, so the release still serving stays the tracked one.
   */
  private async routeOrRestore(serviceId: string, before: St | undefined): Promise<void> {
    try {
      await this.parts.store.syncRoutes();
    } catch (error) {
      await this.parts.store.restore(serviceId, before);
      // A router that was only slow may still apply the refused table once it wakes: the restored one goes after it.
      await this.parts.store.syncRoutes().catch(() => undefined);
      throw new StepError(`the router did not take the new routes: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Waits (bounded) until the router has no open request to the port; returns how many remain. */
  private async waitUntilDrained(port: number): Promise<number> {
    const key = upstreamKey({ host: "127.0.0.1", port });
    const deadline = Date.now() + (this.parts.drainTimeoutMs ?? 10_000);
    for (;;) {
      const open = (await this.parts.router.stats()).inFlight[key] ?? 0;
      if (open === 0 || Date.now() >= deadline) return open;
      await sleep(100);
    }
  }
}

/** The kinds whose code comes from git. */
function gitService(service: ServiceSpec): GitServiceSpec {
  if (service.kind !== "APPLICATION" && service.kind !== "JOB") throw new Error(`${service.kind} services have no repository`);
  return service;
}

function jobContext(ctx: StepContext<ServiceSpec>): StepContext<JobServiceSpec> | null {
  const service = ctx.service;
  return service.kind === "JOB" ? { ...ctx, service } : null;
}
