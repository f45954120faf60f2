import fsp from "node:fs/promises";
import http from "node:http";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type Docker from "dockerode";
import getPort from "get-port";
import type pino from "pino";
import type { ApplicationServiceSpec, ContainerServiceSpec, RuntimeServiceState, ServiceKind } from "../../protocol";
import { routerClient } from "../../router/router-process";
import { routesTableOf, upstreamKey } from "../../router/routes";
import { SerialQueues } from "../serial";
import { readJson, writeJsonAtomic } from "../local/files";
import { appDirectory, cloneRepository } from "../local/git";
import { engineBaseEnv } from "../local/processes-env";
import { type ExecOptions, type ExecSession, type ReleaseHandle, type Runtime, type ServiceSample, type StepContext, StepError, type StepResult } from "../runtime";
import { secretMasker } from "../secret-mask";
import { describeError, statusCodeOf } from "./docker-host";
import { startExec } from "./exec-session";
import { buildApplicationImage, ensureContainerImage, imageRepository } from "./images";
import { ContainerLogFollower, type LogCursor } from "./log-follower";
import { dockerLayout, type DockerServiceState, dockerServiceState, LABELS, type ReleaseContainer } from "./state";
import type { Fd } from "./streams";

/** The key route table writes queue under (beside each service's own state writes). */
const ROUTES = "\u0000routes";

/** The services the docker runtime deploys. */
export type DockerServiceSpec = ApplicationServiceSpec | ContainerServiceSpec;

export type DockerRuntimeOptions = {
  home: string;
  docker: Docker;
  logger: pino.Logger;
  /** One line of a release's runtime output, with the container's own timestamp. */
  serviceLog: (serviceId: string, releaseId: string, text: string, fd?: "stdout" | "stderr" | "system", at?: string) => void;
  /** Tunables, shortened by tests. */
  drainTimeoutMs?: number;
  stopGraceMs?: number;
  supervisionMs?: number;
  /** Built images kept per service besides the live one (rollback without a rebuild). */
  keepImages?: number;
};

type PendingRelease = ReleaseHandle & { dir: string; appDir?: string; image?: string; container?: ReleaseContainer };

type ContainerExit = { code: number | null; oom: boolean };

/** The container's port when neither the config nor the image says: what PORT-driven apps get by default. */
const DEFAULT_CONTAINER_PORT = 8080;

/**
 * The `docker` runtime: every release is a container created through the Docker Engine API
 * (Docker, or Podman's compatible service), publishing its port on 127.0.0.1 for the engine's
 * router. Containers run under their restart policy, so apps outlive the engine; the state files
 * tie them to services so that the next engine adopts them and resumes their logs.
 */
export class DockerRuntime implements Runtime<DockerServiceSpec> {
  readonly name = "docker";
  readonly serviceKinds: readonly ServiceKind[] = ["APPLICATION", "CONTAINER"];
  private readonly docker: Docker;
  private readonly paths;
  private readonly router;
  private readonly states = new Map<string, DockerServiceState>();
  private readonly pending = new Map<string, PendingRelease>();
  private readonly replaced = new Map<string, ReleaseContainer | null>();
  private readonly followers = new Map<string, ContainerLogFollower>();
  /** Log cursors of containers that are not (or no longer) a service's live one: releases being deployed or drained. */
  private readonly cursors = new Map<string, { serviceId: string; cursor: LogCursor }>();
  private readonly exits = new Map<string, ContainerExit>();
  private readonly maskers = new Map<string, (text: string) => string>();
  private readonly lastCpu = new Map<string, { total: number; system: number; cpus: number }>();
  /** Operations on one service, one at a time. */
  private readonly locks = new SerialQueues();
  /** State file writes per service, and route table writes, each in order. */
  private readonly writes = new SerialQueues();
  private supervisor: NodeJS.Timeout | null = null;
  private supervising: Promise<void> | null = null;
  private events: Readable | null = null;
  private stopped = false;

  constructor(private readonly options: DockerRuntimeOptions) {
    this.docker = options.docker;
    this.paths = dockerLayout(options.home);
    this.router = routerClient(options.home);
  }

  async start(): Promise<void> {
    await fsp.mkdir(this.paths.servicesDir, { recursive: true });
    for (const file of await fsp.readdir(this.paths.servicesDir)) {
      if (!file.endsWith(".json")) continue;
      const state = await readJson(`${this.paths.servicesDir}/${file}`, dockerServiceState);
      if (!state) continue;
      this.states.set(state.serviceId, state);
      for (const [containerId, cursor] of Object.entries(state.logCursors)) this.cursors.set(containerId, { serviceId: state.serviceId, cursor });
    }
    await this.syncRoutes();
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
    for (const serviceId of this.states.keys()) void this.persist(serviceId);
    await this.writes.idle();
  }

  services(): RuntimeServiceState[] {
    return [...this.states.values()].flatMap((state) =>
      state.current
        ? [{ serviceId: state.serviceId, releaseId: state.current.releaseId, state: state.status, restarts: state.restarts, commit: state.current.commit, port: state.current.port }]
        : [],
    );
  }

  // ---- deploy steps -------------------------------------------------------------------------

  async newRelease(ctx: StepContext<DockerServiceSpec>): Promise<ReleaseHandle> {
    const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
    const releaseId = `${stamp}-${ctx.deploymentId.slice(0, 8)}`;
    const dir = this.paths.buildDir(ctx.service.id, releaseId);
    await fsp.rm(dir, { recursive: true, force: true });
    const release: PendingRelease = { serviceId: ctx.service.id, releaseId, dir };
    this.pending.set(releaseId, release);
    return release;
  }

  async clone(ctx: StepContext<DockerServiceSpec>, handle: ReleaseHandle): Promise<string> {
    const release = this.pendingRelease(handle);
    const service = applicationOnly(ctx.service);
    const checkout = `${release.dir}/src`;
    release.commit = await cloneRepository({
      git: service.config.git,
      dir: checkout,
      env: engineBaseEnv(),
      timeoutMs: service.config.buildTimeoutSeconds * 1000,
      signal: ctx.signal,
      output: ctx.output,
    });
    release.appDir = await appDirectory(checkout, service.config.git.rootDirectory);
    return release.commit;
  }

  async build(ctx: StepContext<DockerServiceSpec>, handle: ReleaseHandle): Promise<StepResult> {
    const release = this.pendingRelease(handle);
    const service = ctx.service;
    if (service.kind === "CONTAINER") {
      const { image, result } = await ensureContainerImage({ docker: this.docker, service, signal: ctx.signal, output: ctx.output });
      release.image = image;
      return result;
    }
    if (!release.appDir || !release.commit) throw new Error("build before clone");
    try {
      const { image, result } = await buildApplicationImage({ docker: this.docker, service, appDir: release.appDir, commit: release.commit, signal: ctx.signal, output: ctx.output });
      release.image = image;
      return result;
    } finally {
      // The image holds what the release needs; the checkout is not needed any more.
      await fsp.rm(release.dir, { recursive: true, force: true });
    }
  }

  async startRelease(ctx: StepContext<DockerServiceSpec>, handle: ReleaseHandle): Promise<void> {
    const release = this.pendingRelease(handle);
    if (!release.image) throw new Error("start before build");
    release.container = await this.createContainer(ctx, release.releaseId, release.image, release.commit);
    ctx.output(
      "system",
      `Started container ${release.container.containerName} (${release.container.containerId.slice(0, 12)}) from ${release.image}, port ${release.container.containerPort} published on 127.0.0.1:${release.container.port}`,
    );
  }

  async healthCheck(ctx: StepContext<DockerServiceSpec>, handle: ReleaseHandle): Promise<void> {
    const container = this.pendingRelease(handle).container;
    if (!container) throw new Error("health check before start");
    await this.waitHealthy(ctx, container);
  }

  async switchTo(ctx: StepContext<DockerServiceSpec>, handle: ReleaseHandle): Promise<void> {
    const release = this.pendingRelease(handle);
    const container = release.container;
    if (!container) throw new Error("switch before start");
    await this.withLock(ctx.service.id, async () => {
      const previous = this.states.get(ctx.service.id);
      const state: DockerServiceState = {
        serviceId: ctx.service.id,
        name: ctx.service.name,
        kind: ctx.service.kind,
        domains: ctx.service.domains.map((domain) => domain.toLowerCase()),
        current: container,
        status: "running",
        // The count is about the live release: a new release starts from zero.
        restarts: 0,
        logCursors: previous?.logCursors ?? {},
      };
      this.states.set(ctx.service.id, state);
      await this.persist(ctx.service.id);
      await this.syncRoutes();
      this.pending.delete(release.releaseId);
      this.replaced.set(release.releaseId, previous?.current ?? null);
    });
    ctx.output("system", `Router now sends ${ctx.service.domains.join(", ") || "(no domains)"} to 127.0.0.1:${container.port}`);
  }

  async drain(ctx: StepContext<DockerServiceSpec>, handle: ReleaseHandle): Promise<void> {
    const previous = this.replaced.get(handle.releaseId) ?? null;
    this.replaced.delete(handle.releaseId);
    if (!previous) {
      ctx.output("system", "No previous release to drain");
    } else {
      const open = await this.waitUntilDrained(previous.port);
      ctx.output("system", open === 0 ? `Previous release ${previous.releaseId} drained` : `Stopping ${previous.releaseId} with ${open} requests still open after the drain timeout`);
      await this.removeContainer(ctx.service.id, previous);
      ctx.output("system", `Stopped and removed container ${previous.containerName}`);
    }
    if (ctx.service.kind === "APPLICATION") await this.pruneImages(ctx.service);
  }

  async discard(handle: ReleaseHandle): Promise<void> {
    const release = this.pending.get(handle.releaseId);
    this.pending.delete(handle.releaseId);
    if (release?.container) await this.removeContainer(handle.serviceId, release.container);
    if (release) await fsp.rm(release.dir, { recursive: true, force: true });
  }

  // ---- whole-service actions ----------------------------------------------------------------

  async stop(ctx: StepContext<DockerServiceSpec>): Promise<void> {
    await this.withLock(ctx.service.id, async () => {
      const state = this.states.get(ctx.service.id);
      if (!state?.current) return ctx.output("system", "The service has no release: nothing to stop");
      // Marked stopped first, so the supervisor does not take the exit for a crash.
      state.status = "stopped";
      await this.persist(ctx.service.id);
      await this.syncRoutes();
      try {
        await this.docker.getContainer(state.current.containerId).stop({ t: this.stopGraceSeconds() });
      } catch (error) {
        // 304: already stopped; 404: gone. Either way it does not run.
        if (statusCodeOf(error) !== 304 && statusCodeOf(error) !== 404) throw new StepError(`could not stop container ${state.current.containerName}: ${describeError(error)}`);
      }
      await this.finishFollowing(state.current.containerId);
      ctx.output("system", `Stopped container ${state.current.containerName} of release ${state.current.releaseId}`);
    });
  }

  /** A fresh container of the live release's image and settings; the router switches once it is healthy (zero downtime). */
  async restart(ctx: StepContext<DockerServiceSpec>): Promise<void> {
    const state = this.states.get(ctx.service.id);
    const current = state?.current;
    if (!state || !current) throw new StepError("the service has no release to restart: deploy it first");
    const fresh = await this.createContainer(ctx, current.releaseId, current.image, current.commit);
    ctx.output("system", `Started a fresh container ${fresh.containerName} of release ${current.releaseId} on 127.0.0.1:${fresh.port}`);
    try {
      await this.waitHealthy(ctx, fresh);
    } catch (error) {
      await this.removeContainer(ctx.service.id, fresh);
      throw error;
    }
    await this.withLock(ctx.service.id, async () => {
      Object.assign(state, { current: fresh, status: "running" as const, restarts: 0 });
      await this.persist(ctx.service.id);
      await this.syncRoutes();
    });
    await this.waitUntilDrained(current.port);
    await this.removeContainer(ctx.service.id, current);
  }

  async delete(ctx: StepContext<DockerServiceSpec>): Promise<void> {
    await this.withLock(ctx.service.id, async () => {
      this.states.delete(ctx.service.id);
      await this.syncRoutes();
      // Every container of the service, the live one and any left behind by an interrupted deploy.
      const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.serviceId}=${ctx.service.id}`] } });
      for (const container of containers) {
        await this.docker
          .getContainer(container.Id)
          .remove({ force: true })
          .catch((error: unknown) => {
            if (statusCodeOf(error) !== 404) throw new StepError(`could not remove container ${container.Names?.[0] ?? container.Id}: ${describeError(error)}`);
          });
        await this.finishFollowing(container.Id);
      }
      if (ctx.service.kind === "APPLICATION") await this.pruneImages(ctx.service, 0);
      await this.writes.settled(ctx.service.id);
      await fsp.rm(this.paths.stateFile(ctx.service.id), { force: true });
      await fsp.rm(this.paths.serviceBuildsDir(ctx.service.id), { recursive: true, force: true });
      ctx.output("system", `Removed ${containers.length} container${containers.length === 1 ? "" : "s"}, the service's images and its route`);
    });
  }

  // ---- shells and metrics ---------------------------------------------------------------------

  async exec(serviceId: string, argv: string[], options: ExecOptions): Promise<ExecSession> {
    const current = this.states.get(serviceId)?.current;
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
    const state = this.states.get(serviceId);
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

  private async createContainer(ctx: StepContext<DockerServiceSpec>, releaseId: string, image: string, commit: string | undefined): Promise<ReleaseContainer> {
    const service = ctx.service;
    const imageInfo = await this.docker.getImage(image).inspect();
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
          HostConfig: {
            PortBindings: { [`${containerPort}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(port) }] },
            RestartPolicy: { Name: restartPolicy, ...(restartPolicy === "on-failure" ? { MaximumRetryCount: 0 } : {}) },
            // No swap on top of the limit: beyond it the kernel kills the process.
            ...(memoryLimitBytes ? { Memory: memoryLimitBytes, MemorySwap: memoryLimitBytes } : {}),
            ...(resources?.cpus ? { NanoCpus: Math.round(resources.cpus * 1e9) } : {}),
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
  private async waitHealthy(ctx: StepContext<DockerServiceSpec>, container: ReleaseContainer): Promise<void> {
    const { healthCheckPath, healthCheckTimeoutSeconds } = ctx.service.config;
    const deadline = Date.now() + healthCheckTimeoutSeconds * 1000;
    const what = healthCheckPath ? `health check GET ${healthCheckPath}` : `HTTP on container port ${container.containerPort}`;
    let lastStatus: number | null = null;
    let delayMs = 50;
    while (!ctx.signal.aborted) {
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
    if (follower) await Promise.race([follower.ended, sleep(2_000)]);
    await handle.remove({ force: true }).catch((error: unknown) => {
      if (statusCodeOf(error) !== 404) this.options.logger.warn({ err: error, serviceId, containerId: container.containerId }, "could not remove a container");
    });
    await this.finishFollowing(container.containerId);
    this.lastCpu.delete(container.containerId);
    this.restartSeenAt.delete(container.containerId);
    this.exits.delete(container.containerId);
  }

  /** Removes the service's built images beyond the newest `keep` (and never the live one). */
  private async pruneImages(service: { id: string; name: string }, keep = this.options.keepImages ?? 5): Promise<void> {
    const repository = imageRepository(service);
    const live = this.states.get(service.id)?.current?.image;
    const images = await this.docker.listImages({ filters: { reference: [repository] } }).catch(() => []);
    const tags = images
      .sort((a, b) => b.Created - a.Created)
      .flatMap((image) => (image.RepoTags ?? []).filter((tag) => tag.startsWith(`${repository}:`)));
    for (const tag of tags.filter((tag) => tag !== live).slice(keep)) {
      await this.docker
        .getImage(tag)
        .remove({ force: true })
        .catch((error: unknown) => this.options.logger.warn({ err: error, image: tag }, "could not remove an old image"));
    }
  }

  private stopGraceSeconds(): number {
    return Math.max(1, Math.round((this.options.stopGraceMs ?? 10_000) / 1000));
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

  // ---- logs -----------------------------------------------------------------------------------

  private follow(serviceId: string, releaseId: string, containerId: string): void {
    const existing = this.followers.get(containerId);
    if (existing && !existing.done) return;
    const saved = this.cursors.get(containerId)?.cursor ?? this.states.get(serviceId)?.logCursors[containerId] ?? null;
    const follower = new ContainerLogFollower(
      this.docker,
      containerId,
      saved,
      (fd: Fd, text: string, at: string) => this.options.serviceLog(serviceId, releaseId, this.maskerOf(containerId)(text), fd, at),
      (cursor) => {
        this.cursors.set(containerId, { serviceId, cursor });
        const state = this.states.get(serviceId);
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
    const state = entry ? this.states.get(entry.serviceId) : undefined;
    if (state && containerId in state.logCursors && state.current?.containerId !== containerId) {
      delete state.logCursors[containerId];
      await this.persist(state.serviceId);
    }
  }

  /** Secret values of the container's variables, from its labels and environment (so an adopted container is masked too). */
  private maskerOf(containerId: string): (text: string) => string {
    return this.maskers.get(containerId) ?? ((text) => text);
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

  private superviseOnce(): Promise<void> {
    this.supervising ??= this.supervise()
      .catch((error: unknown) => this.options.logger.warn({ err: error }, "supervision pass failed"))
      .finally(() => (this.supervising = null));
    return this.supervising;
  }

  private async supervise(): Promise<void> {
    for (const state of this.states.values()) {
      if (this.stopped) return;
      const current = state.current;
      if (!current || state.status === "stopped" || this.locks.busy(state.serviceId)) continue;
      let info: Docker.ContainerInspectInfo;
      try {
        info = await this.docker.getContainer(current.containerId).inspect();
      } catch (error) {
        if (statusCodeOf(error) !== 404) continue;
        if (state.status !== "crashed") {
          state.status = "crashed";
          this.options.serviceLog(state.serviceId, current.releaseId, `[slipway] the container ${current.containerName} of release ${current.releaseId} is gone (removed outside Slipway); deploy the service again`, "system");
          void this.persist(state.serviceId);
        }
        continue;
      }
      if (this.states.get(state.serviceId) !== state || state.current !== current) continue;
      await this.loadMasker(current.containerId, info);
      const running = info.State.Running && !info.State.Restarting;
      const exit = this.exits.get(current.containerId) ?? { code: info.State.Running ? null : (info.State.ExitCode ?? null), oom: Boolean(info.State.OOMKilled) };
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
          const next = current.restartPolicy === "no" ? `its restart policy is "no": deploy or restart the service to start it again` : `waiting for its restart policy (${current.restartPolicy})`;
          this.options.serviceLog(state.serviceId, current.releaseId, `[slipway] the container of release ${current.releaseId} ${describeExit(exit, current.memoryLimitBytes)}; ${next}`, "system");
        }
        state.status = status;
        changed = true;
      }
      if (changed) void this.persist(state.serviceId);
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

  // ---- state and routes -----------------------------------------------------------------------

  private persistTimers = new Map<string, NodeJS.Timeout>();

  /** Log cursors move with every line: write them at most every 200 ms. */
  private schedulePersist(serviceId: string): void {
    if (this.persistTimers.has(serviceId)) return;
    const timer = setTimeout(() => {
      this.persistTimers.delete(serviceId);
      void this.persist(serviceId);
    }, 200);
    timer.unref();
    this.persistTimers.set(serviceId, timer);
  }

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

  private withLock<T>(serviceId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(serviceId, fn);
  }

  private pendingRelease(handle: ReleaseHandle): PendingRelease {
    const release = this.pending.get(handle.releaseId);
    if (!release) throw new Error(`unknown release ${handle.releaseId}`);
    return release;
  }
}

function applicationOnly(service: DockerServiceSpec): ApplicationServiceSpec {
  if (service.kind !== "APPLICATION") throw new Error(`${service.kind} services have no repository to clone`);
  return service;
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

function httpStatus(port: number, requestPath: string): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: requestPath, timeout: 2_000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
  });
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
