import fsp from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type Docker from "dockerode";
import getPort from "get-port";
import type pino from "pino";
import type { ApplicationServiceSpec, ContainerServiceSpec, JobServiceSpec, ServiceKind } from "../../protocol";
import { routerClient } from "../../router/router-process";
import type { ReleaseDriver } from "../release-runtime";
import { ReleaseRuntime } from "../release-runtime";
import { liveRecord, type PendingRelease, ReleaseStore } from "../release-store";
import {
  type ExecOptions,
  type ExecSession,
  type ReleaseHandle,
  type Runtime,
  type ServiceSample,
  type StepContext,
  StepError,
  type StepResult,
} from "../runtime";
import { ScheduledJobs } from "../scheduled-jobs";
import type { ToolchainStore } from "../toolchains/toolchain-store";
import { secretMasker, withheldLine } from "../secret-mask";
import { httpStatus } from "../shared/http-probe";
import { describeError, statusCodeOf } from "./docker-host";
import { type ContainerJobLaunch, dockerJobRunner, writeJobLaunch } from "./docker-jobs";
import { hardenedHostConfig } from "./hardening";
import { startExec } from "./exec-session";
import { ensureContainerImage, imageRepository, pruneImages } from "./images";
import type { PlanImageSettings } from "./plan-image";
import { buildServiceImage, type ImageBuildOptions, imageBuildTools } from "./service-image";
import { boundedLogConfig, DEFAULT_CONTAINER_LOG_KEEP_BYTES } from "./log-bound";
import { ContainerLogFollower, type LogCursor } from "./log-follower";
import { dockerLayout, type DockerLayout, type DockerServiceState, dockerServiceState, LABELS, type ReleaseContainer } from "./state";
import { type Fd, LAST_LINES_WAIT_MS } from "./streams";
import type { EngineEvents } from "../../engine-events";

/** The services the docker runtime deploys. */
export type DockerServiceSpec = ApplicationServiceSpec | ContainerServiceSpec | JobServiceSpec;
/** The ones that serve through the router (a JOB runs to completion instead). */
type ServedSpec = ApplicationServiceSpec | ContainerServiceSpec;

/** ImageBuildOptions: how apps are built (service-image.ts): toolchains, pip, the image plan builds start from and their network. */
export type DockerRuntimeOptions = ImageBuildOptions & {
  home: string;
  docker: Docker;
  logger: pino.Logger;
  /** Where job runs are told (engine/engine-events.ts). */
  events?: EngineEvents;
  /** One line of a release's runtime output, with the container's own timestamp. */
  serviceLog: (serviceId: string, releaseId: string, text: string, fd?: "stdout" | "stderr" | "system", at?: string) => void;
  /** Tunables, shortened by tests. */
  drainTimeoutMs?: number;
  stopGraceMs?: number;
  supervisionMs?: number;
  /** The length of a minute of `sleepAfterMinutes` (sleep when idle, issue 16): 60 000 ms; tests and journeys shorten it. */
  sleepMinuteMs?: number;
  /** Built images kept per service besides the live one (rollback without a rebuild). */
  keepImages?: number;
  /** Where each container's log is rotated (SLIPWAY_RUNTIME_LOG_KEEP_MB, 16 MiB; log-bound.ts says what a rotation may lose). */
  logKeepBytes?: number;
};

type DockerRelease = PendingRelease<ReleaseContainer> & { image?: string };
type DockerStore = ReleaseStore<ReleaseContainer, DockerServiceState, DockerRelease>;
type Ctx = StepContext<DockerServiceSpec>;

type ContainerExit = { code: number | null; oom: boolean };

/** The container's port when neither the config nor the image says: what PORT-driven apps get by default. */
const DEFAULT_CONTAINER_PORT = 8080;

/**
 * The `docker` runtime: every release is a container created through the Docker Engine API
 * (Docker, or Podman's compatible service), publishing its port on 127.0.0.1 for the engine's
 * router. Containers run under their restart policy, so apps outlive the engine; the state files
 * tie them to services so that the next engine adopts them and resumes their logs. JOB runs are
 * one-off containers of the job's image (docker-jobs.ts).
 */
export function createDockerRuntime(options: DockerRuntimeOptions): Runtime<DockerServiceSpec> {
  const paths = dockerLayout(options.home);
  const router = routerClient(options.home);
  const store: DockerStore = new ReleaseStore({
    stateFile: paths.stateFile,
    knownServicesFile: path.join(path.dirname(paths.servicesDir), "known-services.json"),
    routes: router,
    logger: options.logger,
  });
  const runner = dockerJobRunner({
    docker: options.docker,
    paths,
    keepImages: options.keepImages ?? 5,
    logKeepBytes: options.logKeepBytes ?? DEFAULT_CONTAINER_LOG_KEEP_BYTES,
    onPruneError: (image, error) => options.logger.warn({ err: error, image }, "could not remove an old image"),
  });
  const jobs = new ScheduledJobs({ runner, writes: store.writes, serviceLog: options.serviceLog, events: options.events });
  return new ReleaseRuntime({
    name: "docker",
    serviceKinds: ["APPLICATION", "CONTAINER", "JOB"] satisfies ServiceKind[],
    store,
    driver: new DockerReleases(options, paths, store, jobs, imageBuildTools(options.home, options)),
    jobs,
    router,
    drainTimeoutMs: options.drainTimeoutMs,
    sleep: { logger: options.logger, ...(options.sleepMinuteMs ? { minuteMs: options.sleepMinuteMs } : {}) },
  });
}

/** How the docker runtime builds, starts, checks and stops releases: images and containers. */
class DockerReleases implements ReleaseDriver<DockerServiceSpec, ReleaseContainer, DockerServiceState, DockerRelease> {
  private readonly docker: Docker;
  private readonly followers = new Map<string, ContainerLogFollower>();
  /** Log cursors of containers that are not (or no longer) a service's live one: releases being deployed or drained. */
  private readonly cursors = new Map<string, { serviceId: string; cursor: LogCursor }>();
  private readonly exits = new Map<string, ContainerExit>();
  private readonly maskers = new Map<string, (text: string) => string>();
  private readonly lastCpu = new Map<string, { total: number; system: number; cpus: number }>();
  /** The RestartCount of containers just woken (the same container, not a fresh one) until they go live again. */
  private readonly wokenRestarts = new Map<string, number>();
  private supervisor: NodeJS.Timeout | null = null;
  private supervising: Promise<void> | null = null;
  private events: Readable | null = null;
  private stopped = false;

  constructor(
    private readonly options: DockerRuntimeOptions,
    private readonly paths: DockerLayout,
    private readonly store: DockerStore,
    private readonly jobs: ScheduledJobs<ContainerJobLaunch>,
    private readonly builds: { store: ToolchainStore; plans: PlanImageSettings },
  ) {
    this.docker = options.docker;
  }

  async adopt(): Promise<void> {
    await fsp.mkdir(this.paths.servicesDir, { recursive: true });
    for (const file of await fsp.readdir(this.paths.servicesDir)) {
      if (!file.endsWith(".json")) continue;
      // One unreadable file (a write cut short, a newer engine's format) leaves its service's containers as they are, not the engine down.
      const state = await this.store.adopt(`${this.paths.servicesDir}/${file}`, dockerServiceState).catch((error: unknown) => this.notAdopted(file, error));
      if (!state) continue;
      for (const [containerId, cursor] of Object.entries(state.logCursors)) this.cursors.set(containerId, { serviceId: state.serviceId, cursor });
    }
    for (const serviceId of await fsp.readdir(this.paths.jobsDir).catch(() => [])) {
      await this.jobs.adopt(serviceId).catch((error: unknown) => this.notAdopted(serviceId, error));
    }
    await this.builds.store.sweep();
    await this.store.syncRoutes();
    this.watchEvents();
    // The first pass adopts what runs: followers resume their logs, status and restarts are refreshed.
    await this.superviseOnce();
    this.supervisor = setInterval(() => void this.superviseOnce(), this.options.supervisionMs ?? 1_000);
    this.supervisor.unref();
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.supervisor) clearInterval(this.supervisor);
    for (const timer of this.persistTimers.values()) clearTimeout(timer);
    this.persistTimers.clear();
    await this.supervising;
    this.events?.destroy();
    await Promise.all([...this.followers.values()].map((follower) => follower.stop()));
    this.followers.clear();
    for (const state of this.store.values()) this.store.persistInBackground(state.serviceId);
  }

  private notAdopted(file: string, error: unknown): null {
    this.options.logger.error({ err: error, file }, "could not take up a service: left as it is until it is deployed again");
    return null;
  }

  // ---- release steps --------------------------------------------------------------------------

  async createRelease(ctx: Ctx, releaseId: string): Promise<DockerRelease> {
    const dir = this.paths.buildDir(ctx.service.id, releaseId);
    await fsp.rm(dir, { recursive: true, force: true });
    return { serviceId: ctx.service.id, releaseId, dir };
  }

  async build(ctx: Ctx, release: DockerRelease): Promise<StepResult> {
    const service = ctx.service;
    if (service.kind === "CONTAINER") {
      const { image, result } = await ensureContainerImage({ docker: this.docker, service, signal: ctx.signal, output: ctx.output });
      release.image = image;
      return result;
    }
    if (!release.appDir || !release.commit) throw new Error("build before clone");
    try {
      const { image, result } = await buildServiceImage({
        docker: this.docker,
        service,
        releaseDir: release.dir,
        appDir: release.appDir,
        commit: release.commit,
        noCache: ctx.noCache ?? false,
        settings: this.builds.plans,
        signal: ctx.signal,
        output: ctx.output,
      });
      release.image = image;
      if (service.kind === "JOB") await writeJobLaunch(this.paths, service.id, release.releaseId, jobLaunch(service, image, release));
      return result;
    } finally {
      // The image holds what the release needs; the checkout is not needed any more.
      await fsp.rm(release.dir, { recursive: true, force: true });
    }
  }

  async launch(ctx: Ctx, release: DockerRelease): Promise<ReleaseContainer> {
    if (!release.image) throw new Error("start before build");
    const container = await this.createContainer(served(ctx).service, release.releaseId, release.image, release.commit);
    ctx.output(
      "system",
      `Started container ${container.containerName} (${container.containerId.slice(0, 12)}) from ${release.image}, port ${container.containerPort} published on 127.0.0.1:${container.port}`,
    );
    return container;
  }

  healthCheck(ctx: Ctx, container: ReleaseContainer): Promise<void> {
    const { service, signal } = served(ctx);
    return this.waitHealthy({ ...service.config, signal }, container);
  }

  stopRelease(serviceId: string, container: ReleaseContainer): Promise<void> {
    return this.removeContainer(serviceId, container);
  }

  async relaunch(ctx: Ctx, current: ReleaseContainer): Promise<ReleaseContainer> {
    const fresh = await this.createContainer(served(ctx).service, current.releaseId, current.image, current.commit);
    ctx.output("system", `Started a fresh container ${fresh.containerName} of release ${current.releaseId} on 127.0.0.1:${fresh.port}`);
    return fresh;
  }

  liveState(ctx: Ctx, container: ReleaseContainer, previous: DockerServiceState | undefined): DockerServiceState {
    return { ...liveRecord(ctx.service, container), kind: ctx.service.kind, logCursors: previous?.logCursors ?? {} };
  }

  wentLive(state: DockerServiceState, how: "switch" | "restart"): void {
    // `restarts` follows the live container's RestartCount: zero in a fresh container, kept by a woken one.
    if (how !== "restart" || !state.current) return;
    state.restarts = this.wokenRestarts.get(state.current.containerId) ?? 0;
    this.wokenRestarts.delete(state.current.containerId);
  }

  async halt(ctx: Ctx, _state: DockerServiceState, current: ReleaseContainer): Promise<void> {
    await this.stopContainer(current);
    ctx.output("system", `Stopped container ${current.containerName} of release ${current.releaseId}`);
  }

  /**
   * Sleep when idle (issue 16): the container is stopped, not removed, so its file system, its
   * port and its log stay; the next request starts the same container again (wake).
   */
  async sleep(state: DockerServiceState, current: ReleaseContainer): Promise<void> {
    await this.stopContainer(current);
    this.options.serviceLog(state.serviceId, current.releaseId, `[slipway] asleep after ${state.sleep?.afterMinutes ?? "?"} min without a request`, "system");
  }

  /** Starts the sleeping container again, its log followed from where it stopped, checked as its deploy was (the health check path, else any HTTP answer). */
  async wake(state: DockerServiceState, current: ReleaseContainer): Promise<ReleaseContainer> {
    const handle = this.docker.getContainer(current.containerId);
    try {
      await handle.start();
    } catch (error) {
      // 304: running already (started behind the engine's back): it is checked like a started one.
      if (statusCodeOf(error) !== 304) throw new StepError(`could not start container ${current.containerName} again: ${describeError(error)}`);
    }
    const info = await handle.inspect();
    await this.loadMasker(current.containerId, info);
    this.follow(state.serviceId, current.releaseId, current.containerId);
    const check = { healthCheckPath: state.sleep?.healthCheckPath, healthCheckTimeoutSeconds: state.sleep?.healthCheckTimeoutSeconds ?? 60 };
    try {
      await this.waitHealthy({ ...check, signal: new AbortController().signal }, current);
    } catch (error) {
      await this.stopContainer(current).catch(() => undefined);
      throw new StepError(`the release did not wake: ${(error as Error).message}`);
    }
    this.wokenRestarts.set(current.containerId, info.RestartCount ?? 0);
    this.options.serviceLog(
      state.serviceId,
      current.releaseId,
      `[slipway] woke up on a request (container ${current.containerName}, port ${current.port})`,
      "system",
    );
    return { ...current, startedAt: new Date().toISOString() };
  }

  /** Stops a container and keeps it (to start again), after its last log lines were reported. */
  private async stopContainer(current: ReleaseContainer): Promise<void> {
    try {
      await this.docker.getContainer(current.containerId).stop({ t: this.stopGraceSeconds() });
    } catch (error) {
      // 304: already stopped; 404: gone. Either way it does not run.
      if (statusCodeOf(error) !== 304 && statusCodeOf(error) !== 404)
        throw new StepError(`could not stop container ${current.containerName}: ${describeError(error)}`);
    }
    await this.finishFollowing(current.containerId);
  }

  async drained(ctx: Ctx, previous: ReleaseContainer | null): Promise<void> {
    if (previous) ctx.output("system", `Stopped and removed container ${previous.containerName}`);
    if (ctx.service.kind === "APPLICATION") await this.pruneImages(ctx.service, this.store.get(ctx.service.id)?.current?.image);
  }

  async discarded(_handle: ReleaseHandle, release: DockerRelease | undefined): Promise<void> {
    if (release) await fsp.rm(release.dir, { recursive: true, force: true });
  }

  async removeReleases(serviceId: string, _state: DockerServiceState | undefined, service: DockerServiceSpec | null): Promise<string> {
    // Every container of the service, the live one, any left behind by an interrupted deploy, a job's run.
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.serviceId}=${serviceId}`] } });
    for (const container of containers) {
      await this.docker
        .getContainer(container.Id)
        .remove({ force: true })
        .catch((error: unknown) => {
          if (statusCodeOf(error) !== 404) throw new StepError(`could not remove container ${container.Names?.[0] ?? container.Id}: ${describeError(error)}`);
        });
      await this.finishFollowing(container.Id);
    }
    if (service && service.kind !== "CONTAINER") await this.pruneImages(service, undefined, 0);
    return `Removed ${containers.length} container${containers.length === 1 ? "" : "s"}, the service's images and its route`;
  }

  async removeFiles(serviceId: string): Promise<void> {
    await fsp.rm(this.paths.stateFile(serviceId), { force: true });
    await fsp.rm(this.paths.serviceBuildsDir(serviceId), { recursive: true, force: true });
    await fsp.rm(this.paths.jobDir(serviceId), { recursive: true, force: true });
  }

  describeUpstream(container: ReleaseContainer): string {
    return `127.0.0.1:${container.port}`;
  }

  // ---- shells and metrics ---------------------------------------------------------------------

  async exec(serviceId: string, argv: string[], options: ExecOptions): Promise<ExecSession> {
    const current = this.store.get(serviceId)?.current;
    if (!current) throw new StepError("the service has no running release");
    // No command: the container's shell (images without /bin/sh cannot open one).
    const command = argv.length > 0 ? argv : ["/bin/sh"];
    const env = options.tty ? { TERM: "xterm-256color", ...options.env } : options.env;
    try {
      return await startExec(this.docker, current.containerId, command, { ...options, env });
    } catch (error) {
      throw new StepError(`could not start ${command[0]} in container ${current.containerName}: ${describeError(error)}`);
    }
  }

  async sample(serviceId: string): Promise<ServiceSample> {
    const state = this.store.get(serviceId);
    const current = state?.current;
    if (!state || !current) throw new StepError("the service has no running release");
    const read = async () => {
      const stats = (await this.docker.getContainer(current.containerId).stats({ stream: false })) as unknown as ContainerStats;
      return {
        total: stats.cpu_stats?.cpu_usage?.total_usage ?? 0,
        system: stats.cpu_stats?.system_cpu_usage ?? 0,
        cpus: stats.cpu_stats?.online_cpus ?? stats.cpu_stats?.cpu_usage?.percpu_usage?.length ?? 1,
        stats,
      };
    };
    let now = await read();
    const key = current.containerId;
    let before = this.lastCpu.get(key);
    if (!before || now.total < before.total) {
      // No earlier sample of this container: Podman's one-shot stats carry no `precpu_stats`, so take a second one.
      const pre = now.stats.precpu_stats?.cpu_usage?.total_usage ?? 0;
      if (pre > 0 && (now.stats.precpu_stats?.system_cpu_usage ?? 0) > 0) {
        before = { total: pre, system: now.stats.precpu_stats?.system_cpu_usage ?? 0, cpus: now.cpus };
      } else {
        before = now;
        await sleep(250);
        now = await read();
      }
    }
    this.lastCpu.set(key, { total: now.total, system: now.system, cpus: now.cpus });
    const systemDelta = now.system - before.system;
    // The Docker CLI's formula: the container's share of all host CPU time, times the number of CPUs.
    const cpuPercent = systemDelta > 0 ? ((now.total - before.total) / systemDelta) * now.cpus * 100 : 0;
    const memory = now.stats.memory_stats ?? {};
    // Page cache that can be reclaimed is not the app's memory (the Docker CLI subtracts it too).
    const inactive = memory.stats?.inactive_file ?? memory.stats?.total_inactive_file ?? 0;
    const limit = memory.limit && current.memoryLimitBytes ? Math.min(memory.limit, current.memoryLimitBytes) : (current.memoryLimitBytes ?? null);
    return {
      at: new Date().toISOString(),
      cpuPercent: Math.max(0, Math.round(cpuPercent * 100) / 100),
      memoryBytes: Math.max(0, (memory.usage ?? 0) - inactive),
      memoryLimitBytes: limit,
      restarts: state.restarts,
    };
  }

  // ---- containers -----------------------------------------------------------------------------

  private async createContainer(service: ServedSpec, releaseId: string, image: string, commit: string | undefined): Promise<ReleaseContainer> {
    const imageInfo = await this.docker.getImage(image).inspect();
    const imageUser = imageInfo.Config?.User || undefined;
    const user = (service.kind === "CONTAINER" ? service.config.user : undefined) ?? imageUser;
    const exposed = Object.keys(imageInfo.Config?.ExposedPorts ?? {}).filter((port) => port.endsWith("/tcp"));
    const containerPort = service.config.port ?? (exposed.length === 1 ? Number.parseInt(exposed[0]!, 10) : DEFAULT_CONTAINER_PORT);
    const variables = Object.fromEntries(service.variables.map((variable) => [variable.key, variable.value]));
    const env: Record<string, string> = {
      PORT: String(containerPort),
      ...variables,
      SLIPWAY_RELEASE_ID: releaseId,
      ...(commit ? { SLIPWAY_GIT_COMMIT: commit } : {}),
    };
    const resources = service.config.resources;
    const memoryLimitBytes = resources?.memoryMb ? resources.memoryMb * 1024 * 1024 : null;
    const restartPolicy = service.kind === "CONTAINER" ? service.config.restartPolicy : "unless-stopped";
    const secretKeys = service.variables.filter((variable) => variable.secret).map((variable) => variable.key);
    const containerName = `slipway-${service.name}-${service.id.slice(0, 8)}-${releaseId}-${Date.now().toString(36)}`;

    for (let attempt = 1; ; attempt++) {
      const port = await getPort({ host: "127.0.0.1" });
      let created: Docker.Container | null = null;
      try {
        created = await this.docker.createContainer({
          name: containerName,
          Image: image,
          Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
          ...(service.kind === "CONTAINER" && service.config.command ? { Cmd: service.config.command } : {}),
          ExposedPorts: { [`${containerPort}/tcp`]: {} },
          Labels: {
            [LABELS.managed]: "1",
            [LABELS.serviceId]: service.id,
            [LABELS.releaseId]: releaseId,
            ...(commit ? { [LABELS.commit]: commit } : {}),
            [LABELS.secretKeys]: secretKeys.join(","),
          },
          ...(user && user !== imageUser ? { User: user } : {}),
          HostConfig: {
            ...hardenedHostConfig({ user, readOnlyRootFilesystem: service.kind === "CONTAINER" && service.config.readOnlyRootFilesystem }),
            PortBindings: { [`${containerPort}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(port) }] },
            RestartPolicy: { Name: restartPolicy, ...(restartPolicy === "on-failure" ? { MaximumRetryCount: 0 } : {}) },
            // No swap on top of the limit: beyond it the kernel kills the process.
            ...(memoryLimitBytes ? { Memory: memoryLimitBytes, MemorySwap: memoryLimitBytes } : {}),
            ...(resources?.cpus ? { NanoCpus: Math.round(resources.cpus * 1e9) } : {}),
            // Rotated, so that a chatty app cannot fill the host's disk.
            LogConfig: boundedLogConfig(this.options.logKeepBytes ?? DEFAULT_CONTAINER_LOG_KEEP_BYTES),
          },
        });
        this.maskers.set(created.id, secretMasker(service.variables));
        await created.start();
        // From its first line: a release that fails its health check shows why in its log.
        this.follow(service.id, releaseId, created.id);
        return {
          releaseId,
          containerId: created.id,
          containerName,
          image,
          port,
          containerPort,
          commit,
          memoryLimitBytes,
          restartPolicy,
          startedAt: new Date().toISOString(),
        };
      } catch (error) {
        const reason = describeError(error);
        if (created) await created.remove({ force: true }).catch(() => undefined);
        if (created) await this.finishFollowing(created.id);
        // Another process may take the free port between getPort and the start: try another one.
        if (attempt < 3 && /address already in use|port is already allocated/i.test(reason)) continue;
        throw new StepError(`could not start a container from ${image}: ${reason}`);
      }
    }
  }

  /** Healthy: a 2xx/3xx answer to GET healthCheckPath, or any HTTP answer to GET / without one. Fails at once when the container stops. */
  private async waitHealthy(
    check: { healthCheckPath?: string | undefined; healthCheckTimeoutSeconds: number; signal: AbortSignal },
    container: ReleaseContainer,
  ): Promise<void> {
    const { healthCheckPath, healthCheckTimeoutSeconds } = check;
    const deadline = Date.now() + healthCheckTimeoutSeconds * 1000;
    const what = healthCheckPath ? `health check GET ${healthCheckPath}` : `HTTP on container port ${container.containerPort}`;
    let lastStatus: number | null = null;
    let delayMs = 50;
    while (!check.signal.aborted) {
      const info = await this.docker
        .getContainer(container.containerId)
        .inspect()
        .catch(() => null);
      if (!info) throw new StepError(`${what}: the container was removed before it became healthy`);
      if (!info.State.Running || info.State.Restarting) {
        const exit = { code: info.State.ExitCode ?? null, oom: Boolean(info.State.OOMKilled) || Boolean(this.exits.get(container.containerId)?.oom) };
        throw new StepError(`${what}: the container ${describeExit(exit, container.memoryLimitBytes)} before it became healthy`);
      }
      lastStatus = await httpStatus(container.port, healthCheckPath ?? "/");
      if (lastStatus !== null && (!healthCheckPath || (lastStatus >= 200 && lastStatus < 400))) return;
      if (Date.now() >= deadline) {
        throw new StepError(
          healthCheckPath
            ? `${what} did not answer 2xx within ${healthCheckTimeoutSeconds}s${lastStatus === null ? "" : ` (last status ${lastStatus})`}`
            : `${what} did not answer within ${healthCheckTimeoutSeconds}s: does the app listen on $PORT (${container.containerPort})?`,
        );
      }
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 1.5, 500);
    }
    throw new StepError("health check canceled");
  }

  /** Stops (SIGTERM, then SIGKILL after the grace period) and removes a container, after its last log lines were reported. */
  private async removeContainer(serviceId: string, container: ReleaseContainer): Promise<void> {
    const handle = this.docker.getContainer(container.containerId);
    await handle.stop({ t: this.stopGraceSeconds() }).catch(() => undefined);
    // The follow stream ends once the stopped container's last lines are out.
    const follower = this.followers.get(container.containerId);
    if (follower) await Promise.race([follower.ended, sleep(LAST_LINES_WAIT_MS)]);
    await handle.remove({ force: true }).catch((error: unknown) => {
      if (statusCodeOf(error) !== 404) this.options.logger.warn({ err: error, serviceId, containerId: container.containerId }, "could not remove a container");
    });
    await this.finishFollowing(container.containerId);
    this.lastCpu.delete(container.containerId);
    this.restartSeenAt.delete(container.containerId);
    this.exits.delete(container.containerId);
  }

  /** Removes the service's built images beyond the newest `keep` (and never the live one). */
  private pruneImages(service: { id: string; name: string }, live: string | undefined, keep = this.options.keepImages ?? 5): Promise<void> {
    return pruneImages({
      docker: this.docker,
      repository: imageRepository(service),
      live,
      keep,
      onError: (image, error) => this.options.logger.warn({ err: error, image }, "could not remove an old image"),
    });
  }

  private stopGraceSeconds(): number {
    return Math.max(1, Math.round((this.options.stopGraceMs ?? 10_000) / 1000));
  }

  // ---- logs -----------------------------------------------------------------------------------

  private follow(serviceId: string, releaseId: string, containerId: string): void {
    const existing = this.followers.get(containerId);
    if (existing && !existing.done) return;
    const saved = this.cursors.get(containerId)?.cursor ?? this.store.get(serviceId)?.logCursors[containerId] ?? null;
    const follower = new ContainerLogFollower(
      this.docker,
      containerId,
      saved,
      (fd: Fd, text: string, at: string) => this.options.serviceLog(serviceId, releaseId, this.maskerOf(containerId)(text), fd, at),
      (cursor) => {
        this.cursors.set(containerId, { serviceId, cursor });
        const state = this.store.get(serviceId);
        if (state && containerId === state.current?.containerId) {
          state.logCursors[containerId] = cursor;
          this.schedulePersist(serviceId);
        }
      },
    );
    this.followers.set(containerId, follower);
    void follower.start();
  }

  private async finishFollowing(containerId: string): Promise<void> {
    const follower = this.followers.get(containerId);
    this.followers.delete(containerId);
    await follower?.stop();
    const entry = this.cursors.get(containerId);
    this.cursors.delete(containerId);
    this.maskers.delete(containerId);
    const state = entry ? this.store.get(entry.serviceId) : undefined;
    if (state && containerId in state.logCursors && state.current?.containerId !== containerId) {
      delete state.logCursors[containerId];
      await this.store.persist(state.serviceId);
    }
  }

  /** Secret values of the container's variables, from its labels and environment (so an adopted container is masked too). */
  private maskerOf(containerId: string): (text: string) => string {
    // Fail closed: a line of a container whose secrets are not loaded yet is withheld, never shipped raw.
    return this.maskers.get(containerId) ?? (() => withheldLine("the container's variables are not loaded yet"));
  }

  private async loadMasker(containerId: string, info: Docker.ContainerInspectInfo): Promise<void> {
    if (this.maskers.has(containerId)) return;
    const keys = new Set((info.Config.Labels?.[LABELS.secretKeys] ?? "").split(",").filter(Boolean));
    const variables = (info.Config.Env ?? []).flatMap((entry) => {
      const eq = entry.indexOf("=");
      const key = entry.slice(0, eq);
      return keys.has(key) ? [{ key, value: entry.slice(eq + 1), secret: true }] : [];
    });
    this.maskers.set(containerId, secretMasker(variables));
  }

  // ---- supervision ----------------------------------------------------------------------------

  /** Container exits as the Engine API reports them (`die` carries the exit code, `oom` comes before it). */
  private watchEvents(): void {
    if (this.stopped) return;
    const retry = () => {
      this.events = null;
      if (!this.stopped) setTimeout(() => this.watchEvents(), 1_000).unref();
    };
    this.docker
      // Filtered here rather than with `event: ["die", "oom"]`: Podman 4.3 matches no event when a filter has two values.
      .getEvents({ filters: { type: ["container"] } })
      .then((stream) => {
        const readable = stream as unknown as Readable;
        if (this.stopped) return readable.destroy();
        this.events = readable;
        void jsonEvents(readable, (event) => {
          const id = event.id ?? event.Actor?.ID;
          if (!id) return;
          const previous = this.exits.get(id);
          if (event.Action === "oom" || event.status === "oom") this.exits.set(id, { code: previous?.code ?? null, oom: true });
          if (event.Action === "die" || event.status === "die") {
            const code = Number.parseInt(event.Actor?.Attributes?.exitCode ?? event.Actor?.Attributes?.containerExitCode ?? "", 10);
            this.exits.set(id, { code: Number.isNaN(code) ? null : code, oom: previous?.oom ?? false });
          }
        }).finally(retry);
      })
      .catch(retry);
  }

  /** Stopped or asleep on purpose, or in the hands of a deploy, stop or restart: supervision leaves it alone. */
  private unsupervised(state: DockerServiceState): boolean {
    return state.status === "stopped" || state.status === "sleeping" || this.store.busy(state.serviceId);
  }

  /**
   * Whether supervision may still act on what it read of `current` after an await: a stop, a
   * deploy or a sleep that began meanwhile owns the state now. Taking a container that a stop
   * was halting for "running" again undid the stop: the router got its address back (502s), then a crash.
   */
  private stillSupervised(state: DockerServiceState, current: ReleaseContainer): boolean {
    return this.store.get(state.serviceId) === state && state.current === current && !this.unsupervised(state);
  }

  private superviseOnce(): Promise<void> {
    this.supervising ??= this.supervise()
      .catch((error: unknown) => this.options.logger.warn({ err: error }, "supervision pass failed"))
      .finally(() => (this.supervising = null));
    return this.supervising;
  }

  private async supervise(): Promise<void> {
    for (const state of this.store.values()) {
      if (this.stopped) return;
      const current = state.current;
      // A sleeping container is stopped on purpose: not a crash, and its restart policy leaves it stopped.
      if (!current || this.unsupervised(state)) continue;
      let info: Docker.ContainerInspectInfo;
      try {
        info = await this.docker.getContainer(current.containerId).inspect();
      } catch (error) {
        if (statusCodeOf(error) !== 404 || !this.stillSupervised(state, current)) continue;
        if (state.status !== "crashed") {
          state.status = "crashed";
          this.options.serviceLog(
            state.serviceId,
            current.releaseId,
            `[slipway] the container ${current.containerName} of release ${current.releaseId} is gone (removed outside Slipway); deploy the service again`,
            "system",
          );
          this.store.persistInBackground(state.serviceId);
        }
        continue;
      }
      await this.loadMasker(current.containerId, info);
      if (!this.stillSupervised(state, current)) continue;
      const running = info.State.Running && !info.State.Restarting;
      const exit = this.exits.get(current.containerId) ?? {
        code: info.State.Running ? null : (info.State.ExitCode ?? null),
        oom: Boolean(info.State.OOMKilled),
      };
      const restartCount = info.RestartCount ?? 0;
      let changed = false;
      if (restartCount > state.restarts && !this.exits.has(current.containerId) && this.awaitingExit(current.containerId)) {
        // The restart can show in RestartCount before its `die` event (with the exit code) is out: wait for it a little.
      } else if (restartCount > state.restarts) {
        this.restartSeenAt.delete(current.containerId);
        const why = describeExit(exit, current.memoryLimitBytes);
        this.options.serviceLog(
          state.serviceId,
          current.releaseId,
          `[slipway] the container of release ${current.releaseId} ${why}; its restart policy (${current.restartPolicy}) restarted it (restart ${restartCount})`,
          "system",
        );
        this.options.logger.warn({ serviceId: state.serviceId, releaseId: current.releaseId, restarts: restartCount, exit }, "container restarted");
        state.restarts = restartCount;
        this.exits.delete(current.containerId);
        changed = true;
      }
      const status = running ? "running" : "crashed";
      if (status !== state.status) {
        if (status === "crashed") {
          const next =
            current.restartPolicy === "no"
              ? `its restart policy is "no": deploy or restart the service to start it again`
              : `waiting for its restart policy (${current.restartPolicy})`;
          this.options.serviceLog(
            state.serviceId,
            current.releaseId,
            `[slipway] the container of release ${current.releaseId} ${describeExit(exit, current.memoryLimitBytes)}; ${next}`,
            "system",
          );
        }
        state.status = status;
        changed = true;
      }
      if (changed) this.store.persistInBackground(state.serviceId);
      if (running) this.follow(state.serviceId, current.releaseId, current.containerId);
    }
  }

  private readonly restartSeenAt = new Map<string, number>();

  /** True for up to 3 s after a restart was first seen without its exit. */
  private awaitingExit(containerId: string): boolean {
    const seen = this.restartSeenAt.get(containerId) ?? Date.now();
    this.restartSeenAt.set(containerId, seen);
    return Date.now() - seen < 3_000;
  }

  // ---- state --------------------------------------------------------------------------------

  private persistTimers = new Map<string, NodeJS.Timeout>();

  /** Log cursors move with every line: write them at most every 200 ms. */
  private schedulePersist(serviceId: string): void {
    if (this.persistTimers.has(serviceId)) return;
    const timer = setTimeout(() => {
      this.persistTimers.delete(serviceId);
      this.store.persistInBackground(serviceId);
    }, 200);
    timer.unref();
    this.persistTimers.set(serviceId, timer);
  }
}

/** The service of a step that starts, checks or restarts a container: JOB services never get one. */
function served(ctx: Ctx): StepContext<ServedSpec> {
  const service = ctx.service;
  if (service.kind === "JOB") throw new Error("JOB services run to completion: they have no serving container");
  return { ...ctx, service };
}

/** How the job's runs start: its command in its image, with the variables it was deployed with (its cron runs use them). */
function jobLaunch(service: JobServiceSpec, image: string, release: DockerRelease): ContainerJobLaunch {
  const variables = Object.fromEntries(service.variables.map((variable) => [variable.key, variable.value]));
  return {
    image,
    command: service.config.command,
    env: { ...variables, SLIPWAY_RELEASE_ID: release.releaseId, ...(release.commit ? { SLIPWAY_GIT_COMMIT: release.commit } : {}) },
    secretKeys: service.variables.filter((variable) => variable.secret).map((variable) => variable.key),
  };
}

/** Why a container stopped, in words; exit 137 under a memory limit is what the kernel's OOM killer leaves. */
export function describeExit(exit: ContainerExit, memoryLimitBytes: number | null): string {
  const limit = memoryLimitBytes ? `${Math.round(memoryLimitBytes / 1024 / 1024)} MiB` : null;
  if (exit.oom) return `ran out of memory${limit ? ` (limit ${limit})` : ""} and was killed (exit ${exit.code ?? 137})`;
  if (exit.code === null) return "stopped (exit code unknown)";
  if (exit.code === 137 && limit) return `was killed with SIGKILL (exit 137), which at its memory limit of ${limit} means it most likely ran out of memory`;
  if (exit.code > 128) return `was killed by signal ${exit.code - 128} (exit ${exit.code})`;
  return `exited with code ${exit.code}`;
}

type EngineEvent = { id?: string; status?: string; Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };

function jsonEvents(stream: Readable, onEvent: (event: EngineEvent) => void): Promise<void> {
  return new Promise((resolve) => {
    let rest = "";
    stream.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString("utf8")).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          onEvent(JSON.parse(line) as EngineEvent);
        } catch {
          // A partial or foreign line: not an event.
        }
      }
    });
    stream.once("end", () => resolve());
    stream.once("close", () => resolve());
    stream.once("error", () => resolve());
  });
}

type ContainerStats = {
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: { inactive_file?: number; total_inactive_file?: number } };
};
