import { type ChildProcess, execFile, spawn } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import getPort from "get-port";
import type pino from "pino";
import type { DatabaseServiceSpec, DiskUsage, GitServiceSpec, JobLifecycleEvent, RuntimeServiceState, ServiceKind, ServiceSpec } from "../../protocol";
import { routerClient, tsxImportUrl } from "../../router/router-process";
import { routesTableOf, upstreamKey } from "../../router/routes";
import { SerialQueues } from "../serial";
import { secretMasker } from "../secret-mask";
import { detectBuildPlan, type RepoFacts } from "../build-plan";
import { type ExecOptions, type ExecSession, type JobRunResult, type ReleaseHandle, type Runtime, type ServiceSample, type StepContext, StepError } from "../runtime";
import { assertReachable, databaseProcessUser } from "./database-user";
import { databaseDrivers, type SourceDatabase } from "./databases/driver";
import type { JobState } from "./jobs";
import { LocalJobs } from "./local-jobs";
import { type CgroupHost, CGROUP_PROCS_VAR, createReleaseCgroup, detectCgroups, launchArgv, memoryLimitOf, oomKills, removeCgroup } from "./cgroups";
import { startLocalExec } from "./exec";
import { sampleGroup } from "./sample";
import { readJson, writeJsonAtomic } from "./files";
import { appDirectory, cloneRepository } from "./git";
import { waitHealthy } from "./health";
import { layout, launchSpec, type LaunchSpec, type ReleaseProcess, type ServiceState, serviceState } from "./layout";
import { LogTailer } from "./log-tailer";
import { childEnv, engineBaseEnv } from "./processes-env";
import { groupListensOn, isSameProcessAlive, portIsFree, processStartTime, runCommand, stopGroup } from "./processes";

const execFileAsync = promisify(execFile);
const SERVICE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The key route table writes queue under (beside each service's own state writes). */
const ROUTES = "\u0000routes";

export type LocalRuntimeOptions = {
  home: string;
  logger: pino.Logger;
  /** One line of a release's runtime output (stdout and stderr share the log file). */
  serviceLog: (serviceId: string, releaseId: string, text: string) => void;
  /** Tunables, shortened by tests. */
  drainTimeoutMs?: number;
  stopGraceMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Where the cgroup hierarchies are mounted (memory and CPU limits); /sys/fs/cgroup by default. */
  cgroupRoot?: string;
};

/** A release on its way to going live, between the clone and the switch. */
type PendingRelease = ReleaseHandle & {
  dir: string;
  appDir?: string;
  launch?: LaunchSpec;
  process?: ReleaseProcess;
  /** A database server already running with this launch: kept, not replaced. */
  reused?: boolean;
  /** The database server stopped to make way for this release: started again if this one never goes live. */
  stoppedServer?: { releaseId: string; launch: LaunchSpec };
  /** A JOB's run during this deployment, recorded in its state at the switch. */
  lastRun?: JobState["lastRun"];
};

type Ctx = StepContext<ServiceSpec>;

/** The kinds whose code comes from git. */
function gitService(ctx: Ctx): GitServiceSpec {
  if (ctx.service.kind !== "APPLICATION" && ctx.service.kind !== "JOB") throw new Error(`${ctx.service.kind} services have no repository`);
  return ctx.service;
}

const staticServer = fileURLToPath(new URL("../static-server.ts", import.meta.url));
/** A process that stayed up this long has recovered: its next crash restarts after the base delay again. */
const HEALTHY_UPTIME_MS = 30_000;

/**
 * The `local` runtime: every release is a process group on this host, started detached with its
 * output appended to a file, so apps outlive the engine; state.json lets the next engine adopt them.
 */
export class LocalRuntime implements Runtime<ServiceSpec> {
  readonly name = "local";
  readonly serviceKinds: readonly ServiceKind[] = ["APPLICATION", "DATABASE", "JOB"];
  private readonly paths;
  private readonly router;
  private readonly states = new Map<string, ServiceState>();
  private readonly pending = new Map<string, PendingRelease>();
  /** Our own children: their exit reason, for messages (adopted processes are polled instead). */
  private readonly exits = new Map<number, string>();
  private readonly children = new Map<number, ChildProcess>();
  private readonly tailers = new Map<string, LogTailer>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private readonly crashStreaks = new Map<string, number>();
  /** Operations on one service, one at a time. */
  private readonly locks = new SerialQueues();
  /** State file writes per service, and route table writes, each in order. */
  private readonly writes = new SerialQueues();
  /** What each switched release replaced, until its drain step stops it. */
  private readonly replaced = new Map<string, ReleaseProcess | null>();
  /** JOB services: their built release, schedule and runs. */
  private readonly jobs: LocalJobs;
  private supervisor: NodeJS.Timeout | null = null;
  /** How this host lets releases be limited (cgroup v2, v1, or not at all). */
  readonly cgroups: CgroupHost;

  constructor(private readonly options: LocalRuntimeOptions) {
    this.paths = layout(options.home);
    this.router = routerClient(options.home);
    this.cgroups = detectCgroups(options.cgroupRoot);
    this.jobs = new LocalJobs({ paths: this.paths, writes: this.writes, serviceLog: options.serviceLog });
  }

  async start(): Promise<void> {
    await fsp.mkdir(this.paths.servicesDir, { recursive: true });
    for (const serviceId of await fsp.readdir(this.paths.servicesDir)) {
      await this.jobs.adopt(serviceId);
      const state = await readJson(this.paths.stateFile(serviceId), serviceState);
      if (!state) continue;
      this.states.set(serviceId, state);
      if (state.current && state.status !== "stopped") {
        // Still-running processes are adopted as they are; dead ones are restarted by the supervisor.
        this.tail(state.serviceId, state.current.releaseId);
        if (state.status === "crashed") this.scheduleRestart(state, "it was waiting for a restart when the engine stopped");
        else if (state.status === "starting") state.status = "running";
      }
    }
    await this.syncRoutes();
    this.supervisor = setInterval(() => this.supervise(), 500);
    this.supervisor.unref();
  }

  async shutdown(): Promise<void> {
    if (this.supervisor) clearInterval(this.supervisor);
    this.jobs.shutdown();
    for (const timer of this.restartTimers.values()) clearTimeout(timer);
    this.restartTimers.clear();
    await Promise.all([...this.tailers.values()].map((tailer) => tailer.stop()));
    this.tailers.clear();
    await this.writes.idle();
  }

  services(): RuntimeServiceState[] {
    return [...this.jobs.states(), ...[...this.states.values()].flatMap((state) =>
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
    )];
  }

  // ---- deploy steps -------------------------------------------------------------------------

  async newRelease(ctx: Ctx): Promise<ReleaseHandle> {
    const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
    const releaseId = `${stamp}-${ctx.deploymentId.slice(0, 8)}`;
    const dir = this.paths.releaseDir(ctx.service.id, releaseId);
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.mkdir(dir, { recursive: true });
    const release: PendingRelease = { serviceId: ctx.service.id, releaseId, dir };
    this.pending.set(releaseId, release);
    return release;
  }

  async clone(ctx: Ctx, handle: ReleaseHandle): Promise<string> {
    const release = this.pendingRelease(handle);
    const { config } = gitService(ctx);
    const checkout = path.join(release.dir, "src");
    release.commit = await cloneRepository({
      git: config.git,
      dir: checkout,
      env: engineBaseEnv(),
      timeoutMs: config.buildTimeoutSeconds * 1000,
      signal: ctx.signal,
      output: ctx.output,
    });
    release.appDir = await appDirectory(checkout, config.git.rootDirectory);
    return release.commit;
  }

  async build(ctx: Ctx, handle: ReleaseHandle): Promise<void> {
    const release = this.pendingRelease(handle);
    if (ctx.service.kind === "DATABASE") return this.prepareDatabase({ ...ctx, service: ctx.service }, release);
    const service = gitService(ctx);
    const appDir = release.appDir;
    if (!appDir) throw new Error("build before clone");
    const { config } = service;
    // A JOB's command is what its release runs, as a start command is an application's.
    const startCommand = service.kind === "JOB" ? service.config.command : service.config.startCommand;
    const resources = service.kind === "APPLICATION" ? service.config.resources : undefined;
    const detected = detectBuildPlan(await readRepoFacts(appDir), { buildCommand: config.buildCommand, startCommand });
    if (!detected.ok) throw new StepError(detected.reason);
    const plan = detected.plan;
    ctx.output("system", `Build plan: ${plan.kind}; ${plan.steps.map((step) => step.display).join(", ") || "nothing to build"}; start: ${plan.start.display}`);

    const base = engineBaseEnv();
    const variables = Object.fromEntries(ctx.service.variables.map((variable) => [variable.key, variable.value]));
    const pathPrefix = plan.pathPrefix.map((dir) => path.join(appDir, dir));
    const env: Record<string, string> = { ...base, ...variables, PATH: [...pathPrefix, variables.PATH ?? base.PATH].join(":") };
    if (plan.kind === "python") env.VIRTUAL_ENV = path.join(appDir, ".venv");

    const deadline = Date.now() + config.buildTimeoutSeconds * 1000;
    for (const step of plan.steps) {
      ctx.output("system", `$ ${step.display}`);
      const result = await runCommand({
        argv: step.argv,
        cwd: appDir,
        env: { ...env, CI: "true" },
        timeoutMs: Math.max(deadline - Date.now(), 1),
        signal: ctx.signal,
        onLine: ctx.output,
      });
      if (result.aborted) throw new StepError(`build command "${step.display}" canceled`);
      if (result.timedOut) throw new StepError(`build timed out after ${config.buildTimeoutSeconds}s in "${step.display}"`);
      if (result.code === 127) throw new StepError(`build command "${step.display}" not found (exit 127): is it installed on the engine's host?`);
      if (result.code !== 0) throw new StepError(`build command "${step.display}" exited with code ${String(result.code ?? result.signal)}`);
    }

    const argv =
      plan.start.type === "static"
        ? [process.execPath, "--import", tsxImportUrl(), staticServer, appDir]
        : plan.start.argv.map((part, index) => (index === 0 && part.includes("/") && !path.isAbsolute(part) ? path.join(appDir, part) : part));
    release.launch = {
      argv,
      cwd: appDir,
      env: { ...env, SLIPWAY_RELEASE_ID: release.releaseId, SLIPWAY_GIT_COMMIT: release.commit ?? "" },
      secretKeys: ctx.service.variables.filter((variable) => variable.secret).map((variable) => variable.key),
      ...(resources ? { limits: resources } : {}),
    };
    if (resources) ctx.output("system", this.describeLimits(resources));
    await this.writeLaunch(release);
  }

  async startRelease(ctx: Ctx, handle: ReleaseHandle): Promise<void> {
    const release = this.pendingRelease(handle);
    if (!release.launch) throw new Error("start before build");
    if (ctx.service.kind === "DATABASE" && (await this.keepOrStopDatabase(ctx, release))) return;
    release.process = await this.spawnRelease(ctx.service.id, release.releaseId, release.launch, release.commit);
    ctx.output("system", `Started ${release.launch.argv.join(" ")} as pid ${release.process.pid} on port ${release.process.port}`);
  }

  async healthCheck(ctx: Ctx, handle: ReleaseHandle): Promise<void> {
    const proc = this.pendingRelease(handle).process;
    if (!proc) throw new Error("health check before start");
    await this.waitHealthy(ctx, proc);
  }

  async switchTo(ctx: Ctx, handle: ReleaseHandle): Promise<void> {
    const release = this.pendingRelease(handle);
    if (ctx.service.kind === "JOB") {
      await this.jobs.install({ ...ctx, service: ctx.service }, release);
      this.pending.delete(release.releaseId);
      return;
    }
    const proc = release.process;
    if (!proc) throw new Error("switch before start");
    await this.withLock(ctx.service.id, async () => {
      const previous = this.states.get(ctx.service.id);
      this.cancelRestart(ctx.service.id);
      const state: ServiceState = {
        serviceId: ctx.service.id,
        name: ctx.service.name,
        domains: ctx.service.domains.map((domain) => domain.toLowerCase()),
        current: proc,
        status: "running",
        // The count is about the live release: a new release starts from zero (as on Heroku).
        restarts: 0,
        logOffsets: previous?.logOffsets ?? {},
      };
      this.states.set(ctx.service.id, state);
      this.crashStreaks.delete(ctx.service.id);
      await this.persist(ctx.service.id);
      await this.syncRoutes();
      this.pending.delete(release.releaseId);
      // Remember what this release replaced, for drain (a database server kept as it was replaced nothing).
      this.replaced.set(release.releaseId, release.reused ? null : (previous?.current ?? null));
    });
    ctx.output("system", `Router now sends ${ctx.service.domains.join(", ") || "(no domains)"} to port ${proc.port}`);
  }

  async drain(ctx: Ctx, handle: ReleaseHandle): Promise<void> {
    const previous = this.replaced.get(handle.releaseId) ?? null;
    this.replaced.delete(handle.releaseId);
    if (!previous) return ctx.output("system", "No previous release to drain");
    const open = await this.waitUntilDrained(previous.port);
    ctx.output("system", open === 0 ? `Previous release ${previous.releaseId} drained` : `Stopping ${previous.releaseId} with ${open} requests still open after the drain timeout`);
    await this.stopProcess(ctx.service.id, previous);
    if (previous.releaseId !== handle.releaseId) {
      // Keep the old release's log, drop its checkout (node_modules and venvs are large).
      await fsp.rm(path.join(this.paths.releaseDir(ctx.service.id, previous.releaseId), "src"), { recursive: true, force: true });
    }
  }

  async discard(handle: ReleaseHandle): Promise<void> {
    const release = this.pending.get(handle.releaseId);
    this.pending.delete(handle.releaseId);
    if (release?.process && !release.reused) await this.stopProcess(handle.serviceId, release.process);
    await this.finishTail(handle.serviceId, handle.releaseId);
    if (release) await fsp.rm(path.join(release.dir, "src"), { recursive: true, force: true });
    if (release?.stoppedServer) await this.restoreDatabase(handle.serviceId, release.stoppedServer);
  }

  // ---- whole-service actions ----------------------------------------------------------------

  async stop(ctx: Ctx): Promise<void> {
    if (ctx.service.kind === "JOB") return this.jobs.stop({ ...ctx, service: ctx.service });
    await this.withLock(ctx.service.id, async () => {
      const state = this.states.get(ctx.service.id);
      if (!state?.current) return ctx.output("system", "The service has no release: nothing to stop");
      this.cancelRestart(ctx.service.id);
      // Mark it stopped before the signal so the supervisor does not take the exit for a crash.
      state.status = "stopped";
      await this.persist(ctx.service.id);
      await this.syncRoutes();
      await this.stopProcess(ctx.service.id, state.current);
      // Read its last lines, keep the offset: a later RESTART appends to the same log.
      const tailer = this.tailers.get(state.current.releaseId);
      this.tailers.delete(state.current.releaseId);
      await tailer?.stop();
      ctx.output("system", `Stopped release ${state.current.releaseId}`);
    });
  }

  async restart(ctx: Ctx): Promise<void> {
    if (ctx.service.kind === "JOB") return this.jobs.resume({ ...ctx, service: ctx.service });
    if (ctx.service.kind === "DATABASE") return this.restartDatabase(ctx);
    const state = this.states.get(ctx.service.id);
    const current = state?.current;
    if (!state || !current) throw new StepError("the service has no release to restart: deploy it first");
    const launch = await this.readLaunch(ctx.service.id, current.releaseId);
    if (!launch) throw new StepError(`release ${current.releaseId} has no launch file: deploy the service again`);
    const fresh = await this.spawnRelease(ctx.service.id, current.releaseId, launch, current.commit);
    ctx.output("system", `Started a fresh process of ${current.releaseId} as pid ${fresh.pid} on port ${fresh.port}`);
    try {
      await this.waitHealthy(ctx, fresh);
    } catch (error) {
      await this.stopProcess(ctx.service.id, fresh);
      throw error;
    }
    await this.withLock(ctx.service.id, async () => {
      this.cancelRestart(ctx.service.id);
      Object.assign(state, { current: fresh, status: "running" as const });
      this.crashStreaks.delete(ctx.service.id);
      await this.persist(ctx.service.id);
      await this.syncRoutes();
    });
    await this.waitUntilDrained(current.port);
    await this.stopProcess(ctx.service.id, current);
  }

  async delete(ctx: Ctx): Promise<void> {
    await this.remove(ctx.service.id);
    ctx.output("system", ctx.service.kind === "DATABASE" ? "Removed the database's data, releases and logs" : "Removed the service's route, releases and logs");
  }

  /** Stops whatever runs of the service (process, schedule, run) and removes all its files. */
  private async remove(serviceId: string): Promise<void> {
    await this.withLock(serviceId, async () => {
      await this.jobs.forget(serviceId);
      const state = this.states.get(serviceId);
      this.cancelRestart(serviceId);
      this.states.delete(serviceId);
      await this.syncRoutes();
      if (state?.current) await this.stopProcess(serviceId, state.current);
      for (const releaseId of Object.keys(state?.logOffsets ?? {})) await this.finishTail(serviceId, releaseId);
      await this.writes.settled(serviceId);
      await fsp.rm(this.paths.serviceDir(serviceId), { recursive: true, force: true });
    });
  }

  // ---- leftovers ------------------------------------------------------------------------------

  /** Every service directory on disk with its size in bytes (`du`, which counts what the disk holds). */
  async inventory(): Promise<DiskUsage[]> {
    const ids = (await fsp.readdir(this.paths.servicesDir).catch(() => [])).filter((name) => SERVICE_ID.test(name));
    if (ids.length === 0) return [];
    const { stdout } = await execFileAsync("du", ["-sb", ...ids.map((id) => this.paths.serviceDir(id))], { maxBuffer: 16 * 1024 * 1024 }).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }),
    );
    const sizes = new Map(stdout.split("\n").flatMap((line) => {
      const [bytes, dir] = line.split("\t");
      return bytes && dir ? [[path.basename(dir), Number(bytes)] as const] : [];
    }));
    return ids.map((serviceId) => ({ serviceId, bytes: sizes.get(serviceId) ?? 0 }));
  }

  async purge(serviceIds: string[]): Promise<void> {
    for (const serviceId of serviceIds.filter((id) => SERVICE_ID.test(id))) {
      await this.remove(serviceId);
      this.options.logger.info({ serviceId }, "removed the files of a service that no longer exists");
    }
  }

  // ---- databases ----------------------------------------------------------------------------

  /** First use: a new cluster, or a copy of the source's data (a clone made with data); then the server's launch. */
  private async prepareDatabase(ctx: StepContext<DatabaseServiceSpec>, release: PendingRelease): Promise<void> {
    const { config } = ctx.service;
    const driver = databaseDrivers[config.engine];
    if (!(await driver.available())) throw new StepError(`this engine cannot run ${config.engine} databases: ${config.engine === "redis" ? "redis-server is not installed" : "the PostgreSQL binaries are missing"} on its host`);
    const dataDir = this.paths.dataDir(ctx.service.id);
    const copyFrom = config.copyDataFrom && !fs.existsSync(dataDir) ? await this.sourceDatabase(config.copyDataFrom.serviceId) : null;
    await fsp.mkdir(this.paths.serviceDir(ctx.service.id), { recursive: true });
    await assertReachable(dataDir, this.options.home, databaseProcessUser());
    release.launch = await driver.prepare({
      dataDir,
      runDir: this.paths.runDir(ctx.service.id),
      connection: config.connection,
      copyFrom,
      user: databaseProcessUser(),
      signal: ctx.signal,
      output: ctx.output,
    });
    await this.writeLaunch(release);
    ctx.output("system", `${config.engine} on 127.0.0.1:${config.connection.port}, data in ${dataDir}`);
  }

  private async sourceDatabase(serviceId: string): Promise<SourceDatabase> {
    const state = this.states.get(serviceId);
    const dataDir = this.paths.dataDir(serviceId);
    if (!state?.current || !fs.existsSync(dataDir)) {
      throw new StepError(`the database to copy data from (service ${serviceId}) has no data on this engine: a clone with data must run on its source's cluster, after the source was deployed`);
    }
    const launch = await this.readLaunch(serviceId, state.current.releaseId);
    const running = state.status !== "stopped" && isSameProcessAlive(state.current.pid, state.current.startTime);
    return { name: state.name, dataDir, running, port: state.current.port, env: launch?.env ?? {} };
  }

  /**
   * A database has one server at a time (its data directory allows no second one): a server
   * already running with the same launch is kept (redeploys change nothing), any other is
   * stopped before the new one starts. Returns true when the running server was kept.
   */
  private async keepOrStopDatabase(ctx: Ctx, release: PendingRelease): Promise<boolean> {
    return this.withLock(ctx.service.id, async () => {
      const state = this.states.get(ctx.service.id);
      const current = state?.current;
      if (!state || !current || state.status === "stopped" || !isSameProcessAlive(current.pid, current.startTime)) return false;
      const launch = await this.readLaunch(ctx.service.id, current.releaseId);
      if (launch && JSON.stringify(launch) === JSON.stringify(release.launch)) {
        release.process = current;
        release.reused = true;
        ctx.output("system", `The server (pid ${current.pid}) already runs with this configuration: keeping it`);
        return true;
      }
      await this.stopServer(ctx.service.id, state, current);
      if (launch) release.stoppedServer = { releaseId: current.releaseId, launch };
      ctx.output("system", `Stopped the server of release ${current.releaseId} to start it with the new configuration`);
      return false;
    });
  }

  /** Stops a database's server for good (no crash restart), under the service's lock. */
  private async stopServer(serviceId: string, state: ServiceState, current: ReleaseProcess): Promise<void> {
    this.cancelRestart(serviceId);
    state.status = "stopped";
    await this.persist(serviceId);
    await this.stopProcess(serviceId, current);
  }

  /** The new server never went live: the one it replaced serves again, as an application's previous release would. */
  private async restoreDatabase(serviceId: string, stopped: { releaseId: string; launch: LaunchSpec }): Promise<void> {
    await this.withLock(serviceId, async () => {
      const state = this.states.get(serviceId);
      if (!state?.current || state.current.releaseId !== stopped.releaseId || state.status !== "stopped") return;
      try {
        state.current = await this.spawnRelease(serviceId, stopped.releaseId, stopped.launch, state.current.commit);
        state.status = "running";
        this.options.serviceLog(serviceId, stopped.releaseId, `[slipway] the new server did not go live: release ${stopped.releaseId} serves again`);
      } catch (error) {
        this.options.serviceLog(serviceId, stopped.releaseId, `[slipway] could not start release ${stopped.releaseId} again: ${(error as Error).message}`);
      }
      await this.persist(serviceId);
    });
  }

  private async waitDatabaseReady(ctx: StepContext<DatabaseServiceSpec>, proc: ReleaseProcess): Promise<void> {
    const driver = databaseDrivers[ctx.service.config.engine];
    const deadline = Date.now() + 60_000;
    let lastError = "";
    while (!ctx.signal.aborted) {
      try {
        await driver.ready({ runDir: this.paths.runDir(ctx.service.id), connection: ctx.service.config.connection });
        return ctx.output("system", `${ctx.service.config.engine} accepts connections as ${ctx.service.config.connection.user}`);
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (!isSameProcessAlive(proc.pid, proc.startTime)) throw new StepError(`the server ${this.exits.get(proc.pid) ?? "exited"} before it accepted connections (see the service's logs)`);
      if (Date.now() > deadline) throw new StepError(`the server did not accept connections within 60s: ${lastError}`);
      await sleep(200);
    }
    throw new StepError("canceled");
  }

  /** Stops the server, then starts the same release again (a second server cannot share the data). */
  private async restartDatabase(ctx: Ctx): Promise<void> {
    const state = this.states.get(ctx.service.id);
    const current = state?.current;
    if (!state || !current) throw new StepError("the database has no release to restart: deploy it first");
    const launch = await this.readLaunch(ctx.service.id, current.releaseId);
    if (!launch) throw new StepError(`release ${current.releaseId} has no launch file: deploy the service again`);
    await this.withLock(ctx.service.id, async () => {
      await this.stopServer(ctx.service.id, state, current);
      state.current = await this.spawnRelease(ctx.service.id, current.releaseId, launch, current.commit);
      state.status = "running";
      this.crashStreaks.delete(ctx.service.id);
      await this.persist(ctx.service.id);
    });
    ctx.output("system", `Restarted the server as pid ${state.current!.pid}`);
    await this.waitHealthy(ctx, state.current!);
  }

  // ---- jobs -----------------------------------------------------------------------------------

  /** Runs a JOB once on a lifecycle event (local-jobs.ts): from the release being deployed, or the one it last deployed. */
  async runJob(ctx: Ctx, handle: ReleaseHandle | null, trigger: JobLifecycleEvent): Promise<JobRunResult> {
    if (ctx.service.kind !== "JOB") throw new Error("only JOB services run");
    return this.jobs.run({ ...ctx, service: ctx.service }, handle ? this.pendingRelease(handle) : null, trigger);
  }

  // ---- processes ----------------------------------------------------------------------------

  private async spawnRelease(serviceId: string, releaseId: string, launch: LaunchSpec, commit: string | undefined, preferredPort?: number): Promise<ReleaseProcess> {
    // A database listens where applications were told; anything else takes a free port.
    const port = launch.port ?? (await getPort({ host: "127.0.0.1", ...(preferredPort ? { port: preferredPort } : {}) }));
    if (launch.port !== undefined && !(await portIsFree(launch.port))) {
      throw new StepError(`port ${launch.port} is taken by another process on the engine's host`);
    }
    const logFile = path.join(this.paths.releaseDir(serviceId, releaseId), "runtime.log");
    const log = fs.openSync(logFile, "a");
    if (!launch.argv[0]) throw new Error("empty start command");
    // Limits: the process enters its control groups before it execs the app (cgroups.ts).
    let cgroup: ReturnType<typeof createReleaseCgroup> = null;
    try {
      cgroup = createReleaseCgroup(this.cgroups, `${releaseId}-${Date.now().toString(36)}`, launch.limits);
    } catch (error) {
      this.options.serviceLog(serviceId, releaseId, `[slipway] could not apply the resource limits: ${(error as Error).message}`);
    }
    const [command, ...args] = cgroup ? launchArgv(launch.argv) : launch.argv;
    const env = { ...launch.env, PORT: String(port), ...(cgroup ? { [CGROUP_PROCS_VAR]: cgroup.procs.join(":") } : {}) };
    // Detached with file descriptors (not pipes): the app keeps running and logging when the engine dies.
    const child = spawn(command!, args, {
      cwd: launch.cwd,
      env: childEnv(env),
      detached: true,
      stdio: ["ignore", log, log],
      ...(launch.user ? { uid: launch.user.uid, gid: launch.user.gid } : {}),
    });
    fs.closeSync(log);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once("spawn", () => resolve(child.pid ?? -1));
      child.once("error", (error) => reject(new StepError(`could not start ${command}: ${error.message}`)));
    });
    child.unref();
    this.children.set(pid, child);
    child.once("exit", (code, signal) => {
      this.exits.set(pid, signal ? `was killed by ${signal}` : `exited with code ${String(code)}`);
      this.children.delete(pid);
    });
    const startTime = processStartTime(pid);
    if (startTime === null) {
      if (cgroup) removeCgroup(cgroup.dirs);
      throw new StepError(`${launch.argv[0]} exited immediately`);
    }
    this.tail(serviceId, releaseId);
    return {
      releaseId,
      commit,
      port,
      pid,
      startTime,
      startedAt: new Date().toISOString(),
      ...(cgroup ? { cgroups: cgroup.dirs } : {}),
      ...(launch.stopSignal ? { stopSignal: launch.stopSignal } : {}),
    };
  }

  private async waitHealthy(ctx: Ctx, proc: ReleaseProcess): Promise<void> {
    if (ctx.service.kind === "DATABASE") return this.waitDatabaseReady({ ...ctx, service: ctx.service }, proc);
    if (ctx.service.kind !== "APPLICATION") throw new Error(`${ctx.service.kind} services have no health check`);
    const { healthCheckPath, healthCheckTimeoutSeconds } = ctx.service.config;
    const problem = await waitHealthy({
      port: proc.port,
      path: healthCheckPath,
      timeoutMs: healthCheckTimeoutSeconds * 1000,
      signal: ctx.signal,
      exited: () => (isSameProcessAlive(proc.pid, proc.startTime) ? null : (this.exits.get(proc.pid) ?? "exited")),
      ownsPort: () => groupListensOn(proc.pid, proc.port),
    });
    if (problem) throw new StepError(problem);
  }

  private async stopProcess(serviceId: string, proc: ReleaseProcess): Promise<void> {
    await stopGroup(proc.pid, proc.startTime, this.options.stopGraceMs ?? 10_000, proc.stopSignal);
    this.exits.delete(proc.pid);
    if (proc.cgroups) removeCgroup(proc.cgroups);
    if (this.states.get(serviceId)?.current?.releaseId !== proc.releaseId) await this.finishTail(serviceId, proc.releaseId);
  }

  /** Waits (bounded) until the router has no open request to the port; returns how many remain. */
  private async waitUntilDrained(port: number): Promise<number> {
    const key = upstreamKey({ host: "127.0.0.1", port });
    const deadline = Date.now() + (this.options.drainTimeoutMs ?? 10_000);
    for (;;) {
      const open = (await this.router.stats()).inFlight[key] ?? 0;
      if (open === 0 || Date.now() >= deadline) return open;
      await sleep(100);
    }
  }

  // ---- shells and metrics --------------------------------------------------------------------

  /**
   * Starts `argv` (the release's shell when empty: `$SHELL` of its variables, else /bin/sh) in the
   * live release's app directory with its variables (launch.json), as the app itself sees them.
   */
  async exec(serviceId: string, argv: string[], options: ExecOptions): Promise<ExecSession> {
    const current = this.states.get(serviceId)?.current;
    if (!current || this.states.get(serviceId)?.status === "stopped") throw new StepError("the service has no running release");
    const launch = await this.readLaunch(serviceId, current.releaseId);
    if (!launch) throw new StepError(`release ${current.releaseId} has no launch file`);
    const env: Record<string, string> = { ...launch.env, PORT: String(current.port), ...options.env };
    if (options.tty) env.TERM = "xterm-256color";
    const command = argv.length > 0 ? argv : [env.SHELL || "/bin/sh"];
    return startLocalExec(command, { ...options, cwd: launch.cwd, env });
  }

  async sample(serviceId: string): Promise<ServiceSample> {
    const state = this.states.get(serviceId);
    const current = state?.current;
    if (!state || !current) throw new StepError("the service has no running release");
    const usage = state.status === "running" ? await sampleGroup(current.pid) : { cpuPercent: 0, memoryBytes: 0 };
    return { at: new Date().toISOString(), ...usage, memoryLimitBytes: current.cgroups ? memoryLimitOf(current.cgroups) : null, restarts: state.restarts };
  }

  private describeLimits(limits: { memoryMb?: number; cpus?: number }): string {
    const asked = [limits.memoryMb !== undefined ? `memory ${limits.memoryMb} MiB` : null, limits.cpus !== undefined ? `${limits.cpus} CPU` : null].filter(Boolean).join(", ");
    const host = this.cgroups;
    if (host.kind === "none") return `Limits (${asked}) are NOT enforced on this host: ${host.reason}`;
    if (host.kind === "cgroup-v1" && limits.cpus !== undefined && !host.cpu) return `Limits: ${asked} through cgroup v1; the CPU limit is NOT enforced (no writable cpu hierarchy)`;
    return `Limits: ${asked}, enforced through ${host.kind}`;
  }

  // ---- supervision ---------------------------------------------------------------------------

  private supervise(): void {
    for (const state of this.states.values()) {
      const proc = state.current;
      if (!proc || state.status !== "running" || this.restartTimers.has(state.serviceId) || this.locks.busy(state.serviceId)) continue;
      if (isSameProcessAlive(proc.pid, proc.startTime)) continue;
      // The kernel's OOM killer sends SIGKILL: the group's counter tells it from any other kill.
      const oomKilled = proc.cgroups ? oomKills(proc.cgroups) > 0 : false;
      const limit = proc.cgroups ? memoryLimitOf(proc.cgroups) : null;
      const reason = oomKilled ? `was killed for exceeding its memory limit${limit ? ` of ${Math.round(limit / 1024 / 1024)} MiB` : ""}` : (this.exits.get(proc.pid) ?? "exited");
      state.lastRestart = { at: new Date().toISOString(), reason, ...(oomKilled ? { oomKilled } : {}) };
      // Up long enough counts as recovered: the next crash starts the backoff over.
      if (Date.now() - Date.parse(proc.startedAt) > HEALTHY_UPTIME_MS) this.crashStreaks.delete(state.serviceId);
      state.status = "crashed";
      state.restarts += 1;
      void this.persist(state.serviceId);
      this.scheduleRestart(state, `it ${reason}`);
    }
  }

  private scheduleRestart(state: ServiceState, why: string): void {
    const streak = this.crashStreaks.get(state.serviceId) ?? 0;
    this.crashStreaks.set(state.serviceId, streak + 1);
    const delay = Math.min((this.options.backoffBaseMs ?? 1_000) * 2 ** streak, this.options.backoffMaxMs ?? 30_000);
    const releaseId = state.current?.releaseId ?? "";
    this.options.serviceLog(state.serviceId, releaseId, `[slipway] the process of release ${releaseId} stopped unexpectedly (${why}); restarting in ${delay / 1000}s`);
    this.options.logger.warn({ serviceId: state.serviceId, releaseId, delay }, "release crashed");
    const timer = setTimeout(() => {
      void this.withLock(state.serviceId, () => this.restartCrashed(state.serviceId, releaseId))
        .catch((error: unknown) => {
          this.options.logger.error({ err: error, serviceId: state.serviceId }, "restart failed");
          const current = this.states.get(state.serviceId);
          if (current?.status === "crashed") this.scheduleRestart(current, `the restart failed: ${(error as Error).message}`);
        })
        .finally(() => {
          if (this.restartTimers.get(state.serviceId) === timer) this.restartTimers.delete(state.serviceId);
        });
    }, delay);
    timer.unref();
    this.restartTimers.set(state.serviceId, timer);
  }

  private async restartCrashed(serviceId: string, releaseId: string): Promise<void> {
    const state = this.states.get(serviceId);
    // A deploy, stop or delete since the crash decided otherwise.
    if (!state?.current || state.status !== "crashed" || state.current.releaseId !== releaseId) return;
    const launch = await this.readLaunch(serviceId, releaseId);
    if (!launch) throw new Error(`release ${releaseId} has no launch file`);
    const previousPort = state.current.port;
    if (state.current.cgroups) removeCgroup(state.current.cgroups);
    state.current = await this.spawnRelease(serviceId, releaseId, launch, state.current.commit, previousPort);
    state.status = "running";
    await this.persist(serviceId);
    if (state.current.port !== previousPort) await this.syncRoutes();
  }

  private cancelRestart(serviceId: string): void {
    const timer = this.restartTimers.get(serviceId);
    if (timer) clearTimeout(timer);
    this.restartTimers.delete(serviceId);
  }

  // ---- logs, state, routes -------------------------------------------------------------------

  private tail(serviceId: string, releaseId: string): void {
    if (this.tailers.has(releaseId)) return;
    const file = path.join(this.paths.releaseDir(serviceId, releaseId), "runtime.log");
    const state = this.states.get(serviceId);
    const launchFile = this.paths.launchFile(serviceId, releaseId);
    let mask: ((text: string) => string) | null = null;
    const tailer = new LogTailer(
      file,
      state?.logOffsets[releaseId] ?? 0,
      (lines) => {
        mask ??= maskerFromLaunch(launchFile);
        for (const line of lines) this.options.serviceLog(serviceId, releaseId, mask(line));
      },
      (offset) => {
        const current = this.states.get(serviceId);
        if (!current) return;
        current.logOffsets[releaseId] = offset;
        void this.persist(serviceId);
      },
    );
    this.tailers.set(releaseId, tailer);
    tailer.start();
  }

  private async finishTail(serviceId: string, releaseId: string): Promise<void> {
    const tailer = this.tailers.get(releaseId);
    this.tailers.delete(releaseId);
    await tailer?.stop();
    const state = this.states.get(serviceId);
    if (state && releaseId in state.logOffsets) {
      delete state.logOffsets[releaseId];
      await this.persist(serviceId);
    }
  }

  /** Writes the service's state; writes are chained so the file always ends with the latest. */
  private persist(serviceId: string): Promise<void> {
    return this.writes.run(serviceId, async () => {
      const state = this.states.get(serviceId);
      if (state) await writeJsonAtomic(this.paths.stateFile(serviceId), state);
    });
  }

  private syncRoutes(): Promise<void> {
    const table = routesTableOf(this.states.values());
    return this.writes.run(ROUTES, () => this.router.putRoutes(table));
  }

  /** 0600: the launch file holds the release's environment, secrets included, to restart it after a crash. */
  private writeLaunch(release: PendingRelease): Promise<void> {
    return writeJsonAtomic(this.paths.launchFile(release.serviceId, release.releaseId), release.launch, 0o600);
  }

  /** How a release is (re)started; null when it has no launch file. */
  private readLaunch(serviceId: string, releaseId: string): Promise<LaunchSpec | null> {
    return readJson(this.paths.launchFile(serviceId, releaseId), launchSpec);
  }

  private withLock<T>(serviceId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(serviceId, fn);
  }

  private pendingRelease(handle: ReleaseHandle): PendingRelease {
    const release = this.pending.get(handle.releaseId);
    if (!release) throw new Error(`unknown release ${handle.releaseId}`);
    return release;
  }
}

function maskerFromLaunch(launchFile: string): (text: string) => string {
  try {
    const launch = launchSpec.parse(JSON.parse(fs.readFileSync(launchFile, "utf8")));
    return secretMasker(launch.secretKeys.map((key) => ({ key, value: launch.env[key] ?? "", secret: true })));
  } catch {
    return (text) => text;
  }
}

async function readRepoFacts(appDir: string): Promise<RepoFacts> {
  const files = new Set(await fsp.readdir(appDir));
  const read = async (name: string) => (files.has(name) ? await fsp.readFile(path.join(appDir, name), "utf8") : null);
  const packageText = await read("package.json");
  let packageJson: RepoFacts["packageJson"] = null;
  if (packageText !== null) {
    try {
      packageJson = JSON.parse(packageText) as RepoFacts["packageJson"];
    } catch (error) {
      throw new StepError(`package.json is not valid JSON: ${(error as Error).message}`);
    }
  }
  return { files, packageJson, procfile: await read("Procfile"), requirementsTxt: await read("requirements.txt") };
}
