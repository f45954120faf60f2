import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type pino from "pino";
import type { DiskUsage, ServiceKind, ServiceSpec } from "../../protocol";
import { routerClient, tsxImportUrl } from "../../router/router-process";
import { describePlan, type PlanCommand, stepText } from "../build-plan";
import { isServiceId, type ReleaseDriver, ReleaseRuntime } from "../release-runtime";
import { liveRecord, ReleaseStore } from "../release-store";
import { type ExecOptions, type ExecSession, type Runtime, type ServiceLog, type ServiceSample, type StepContext, StepError } from "../runtime";
import { ScheduledJobs } from "../scheduled-jobs";
import { createLineTail, runCommand } from "../shared/commands";
import { commitEnv } from "../shared/git";
import { readRepoFile, servicePlan, writeGeneratedFiles } from "../service-plan";
import { engineBaseEnv, hostNetworkEnv, readableInSandbox } from "../shared/processes-env";
import { type NodeRequest, type NodeToolchainOptions, NodeToolchains, type ProvidedNode } from "../toolchains/node";
import {
  appSetsRegistry,
  installArgv,
  type PackageManagerRequest,
  packageManagerEnv,
  PackageManagerToolchains,
  type ProvidedPackageManager,
} from "../toolchains/package-managers";
import { pointYarnLockAtRegistry } from "../toolchains/yarn-lock";
import { PythonInterpreters } from "../toolchains/python";
import { ToolchainStore } from "../toolchains/toolchain-store";
import { PYTHON } from "../plans/python";
import {
  berryEnv,
  berryInstallSkippable,
  berryManifestPart,
  BuildCaches,
  cacheEnv,
  cacheKeyParts,
  copyFrameworkCachesArgv,
  copyInstallOutputsArgv,
  installOutputs,
  npmTreeMatches,
  readLockfiles,
} from "./build-cache";
import { type CgroupHost, detectCgroups, memoryLimitOf } from "./cgroups";
import { startLocalExec } from "./exec";
import { waitHealthy } from "./health";
import { type EnvRecipe, layout, type Layout, type LaunchSpec, type LocalRelease, type ReleaseProcess, type ServiceState, serviceState } from "./layout";
import { LocalDatabases } from "./local-databases";
import { localJobRunner } from "./local-jobs";
import { groupListensOn, pidsListeningOn, portIsFree } from "./processes";
import { releaseEnv, secretKeysOf } from "./release-env";
import { DEFAULT_RELEASES_KEPT, DEFAULT_RUNTIME_LOG_KEEP_MB, ReleaseDisk } from "./release-disk";
import { type LocalStore, ReleaseProcesses, releasesWithOffsets, RUNTIME_LOG_FILES } from "./release-processes";
import { sampleGroup } from "./sample";
import { makePrivate } from "./sandbox/private-files";
import { type FenceHost, hostLoopbackFence } from "./sandbox/loopback-fence";
import { isSystemPath, type SandboxHost, type SandboxSpec } from "./sandbox/sandbox";
import { defaultClaimsDir, hostSandbox, ServiceSandboxes } from "./sandbox/service-sandboxes";
import { CrashRestarts } from "./supervision";
import type { EngineEvents } from "../../engine-events";

const execFileAsync = promisify(execFile);

/** How many ports a release is started on before its health check gives up on a port taken from under it. */
const PORT_ATTEMPTS = 3;

export type LocalRuntimeOptions = {
  home: string;
  logger: pino.Logger;
  /** One line of a release's runtime output (stdout and stderr share the log file). */
  serviceLog: ServiceLog;
  /** Tunables, shortened by tests. */
  drainTimeoutMs?: number;
  stopGraceMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Where the cgroup hierarchies are mounted (memory and CPU limits); /sys/fs/cgroup by default. */
  cgroupRoot?: string;
  /** Where supervision passes and job runs are told (engine/engine-events.ts). */
  events?: EngineEvents;
  /** What this host can sandbox (probed once per process by default; tests pass a host that cannot). */
  sandbox?: Promise<SandboxHost>;
  /** What this host can fence off loopback (probed once per process by default; tests pass a host that cannot). */
  loopbackFence?: Promise<FenceHost>;
  /**
   * Where toolchains come from and the Node of apps that name none (SLIPWAY_NPM_REGISTRY,
   * SLIPWAY_NODE_VERSION); `pip`: the engine's PIP_* settings (its package index), passed to Python installs.
   */
  toolchains: NodeToolchainOptions & { pip?: Record<string, string> };
  /** The most a service's build cache may hold (SLIPWAY_BUILD_CACHE_MB); 1024 MB by default. */
  buildCacheMb?: number;
  /** The length of a minute of `sleepAfterMinutes` (sleep when idle): 60 000 ms; tests shorten it to see the real mechanism in seconds. */
  sleepMinuteMs?: number;
  /** What each runtime log file keeps of the lines the control plane stored (SLIPWAY_RUNTIME_LOG_KEEP_MB); 16 MB by default (release-disk.ts). */
  runtimeLogKeepMb?: number;
  /** Releases of a service kept besides those in use (SLIPWAY_RELEASES_KEPT); 3 by default. */
  releasesKept?: number;
  /** How often logs are freed and old releases removed: every minute; tests shorten it. */
  diskPassMs?: number;
};

type Ctx = StepContext<ServiceSpec>;

const staticServer = fileURLToPath(new URL("../static-server.ts", import.meta.url));

/** What a static site's server needs to see, read-only: its own files and the platform's packages (tsx, sirv, compression). */
function staticServerFiles(): string[] {
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  return [staticServer, fileURLToPath(new URL("../static-handler.ts", import.meta.url)), path.join(root, "package.json"), path.join(root, "node_modules")];
}

/**
 * The `local` runtime: every release is a process group on this host, started detached with its
 * output appended to a file, so apps outlive the engine; state.json lets the next engine adopt them.
 */
export function createLocalRuntime(options: LocalRuntimeOptions): Runtime<ServiceSpec> {
  const paths = layout(options.home);
  const router = routerClient(options.home);
  const store: LocalStore = new ReleaseStore({
    stateFile: paths.stateFile,
    knownServicesFile: path.join(options.home, "known-services.json"),
    routes: router,
    logger: options.logger,
  });
  const cgroups = detectCgroups(options.cgroupRoot);
  const sandboxes = new ServiceSandboxes({
    home: options.home,
    paths,
    claimsDir: defaultClaimsDir(),
    host: options.sandbox ?? hostSandbox(options.home),
    fence: () => options.loopbackFence ?? hostLoopbackFence(),
    logger: options.logger,
  });
  const processes = new ReleaseProcesses({ paths, store, cgroups, sandboxes, serviceLog: options.serviceLog, stopGraceMs: options.stopGraceMs });
  const jobs = new ScheduledJobs({
    runner: localJobRunner(paths, processes, sandboxes),
    writes: store.writes,
    serviceLog: options.serviceLog,
    events: options.events,
  });
  const restarts = new CrashRestarts({
    store,
    processes,
    logger: options.logger,
    serviceLog: options.serviceLog,
    backoffBaseMs: options.backoffBaseMs,
    backoffMaxMs: options.backoffMaxMs,
    events: options.events,
  });
  const databases = new LocalDatabases({ home: options.home, paths, store, processes, restarts, sandboxes, serviceLog: options.serviceLog });
  const toolchains = new ToolchainStore(paths.toolchainsDir);
  const node = new NodeToolchains({ ...options.toolchains, store: toolchains });
  const packageManagers = new PackageManagerToolchains({ registry: options.toolchains.registry, store: toolchains });
  const disk = new ReleaseDisk({
    paths,
    store,
    logger: options.logger,
    logKeepBytes: Math.round((options.runtimeLogKeepMb ?? DEFAULT_RUNTIME_LOG_KEEP_MB) * 1024 * 1024),
    releasesKept: options.releasesKept ?? DEFAULT_RELEASES_KEPT,
    passMs: options.diskPassMs,
  });
  const driver = new LocalReleases({
    paths,
    store,
    processes,
    jobs,
    restarts,
    databases,
    cgroups,
    sandboxes,
    toolchains,
    node,
    packageManagers,
    registry: options.toolchains.registry,
    python: new PythonInterpreters(engineBaseEnv().PATH),
    pip: options.toolchains.pip ?? {},
    caches: new BuildCaches({ serviceDir: paths.serviceDir, limitBytes: (options.buildCacheMb ?? 1024) * 1024 * 1024 }),
    disk,
    serviceLog: options.serviceLog,
    logger: options.logger,
  });
  return new ReleaseRuntime({
    name: "local",
    serviceKinds: ["APPLICATION", "DATABASE", "JOB"] satisfies ServiceKind[],
    store,
    driver,
    jobs,
    router,
    drainTimeoutMs: options.drainTimeoutMs,
    sleep: { logger: options.logger, ...(options.sleepMinuteMs ? { minuteMs: options.sleepMinuteMs } : {}) },
    onPurged: (serviceId) => options.logger.info({ serviceId }, "removed the files of a service that no longer exists"),
  });
}

/** How the local runtime builds, starts, checks and stops releases: processes, with databases and crash restarts beside them. */
class LocalReleases implements ReleaseDriver<ServiceSpec, ReleaseProcess, ServiceState, LocalRelease> {
  /** Per service, the launch file a restart in progress replaced: put back if its fresh process fails. */
  private readonly replacedLaunches = new Map<string, { releaseId: string; launch: LaunchSpec }>();

  constructor(
    private readonly parts: {
      paths: Layout;
      store: LocalStore;
      processes: ReleaseProcesses;
      jobs: ScheduledJobs<LaunchSpec>;
      restarts: CrashRestarts;
      databases: LocalDatabases;
      /** How this host lets releases be limited (cgroup v2, v1, or not at all). */
      cgroups: CgroupHost;
      sandboxes: ServiceSandboxes;
      toolchains: ToolchainStore;
      node: NodeToolchains;
      packageManagers: PackageManagerToolchains;
      /** The npm registry toolchains come from: the app's dependencies too, when it is a mirror (package-managers.ts). */
      registry: string;
      python: PythonInterpreters;
      /** PIP_* of the engine's environment: the package index of Python installs, unless the app's variables say. */
      pip: Record<string, string>;
      caches: BuildCaches;
      /** Frees the stored part of live releases' logs and removes old releases (release-disk.ts). */
      disk: ReleaseDisk;
      /** Where a release's falling asleep and waking are told, in its runtime log. */
      serviceLog: ServiceLog;
      logger: pino.Logger;
    },
  ) {}

  async adopt(): Promise<void> {
    const { paths, store, restarts, sandboxes } = this.parts;
    await sandboxes.start();
    await this.parts.toolchains.sweep();
    await fsp.mkdir(paths.servicesDir, { recursive: true, mode: 0o711 });
    // Files written before they were made private (an older engine) are made so now.
    await makePrivate(paths);
    for (const serviceId of await fsp.readdir(paths.servicesDir)) {
      try {
        await this.adoptService(serviceId);
      } catch (error) {
        // One unreadable file (a write cut short by a power loss, a newer engine's format) leaves
        // its service as it is, processes running, instead of keeping every service unsupervised.
        this.parts.logger.error({ err: error, serviceId }, "could not take up the service: left as it is until it is deployed again");
        this.parts.serviceLog(serviceId, "", `[slipway] the engine could not take up this service's state (${(error as Error).message}): deploy it again`);
      }
    }
    await store.syncRoutes();
    restarts.start();
    // After adoption: the tailers' offsets are known, and the releases in use are too.
    this.parts.disk.start();
  }

  private async adoptService(serviceId: string): Promise<void> {
    const { paths, store, jobs, processes, restarts } = this.parts;
    await jobs.adopt(serviceId);
    const state = await store.adopt(paths.stateFile(serviceId), serviceState);
    for (const releaseId of await processes.sweep(serviceId)) {
      // A release that never went live: its checkout goes, as a discarded one's would; its log stays.
      if (releaseId !== state?.current?.releaseId) await fsp.rm(path.join(paths.releaseDir(serviceId, releaseId), "src"), { recursive: true, force: true });
    }
    // A sleeping service's release starts again on its next request (the router asks).
    if (!state?.current || state.status === "stopped" || state.status === "sleeping") return;
    // Still-running processes are adopted as they are; dead ones are restarted by the supervisor.
    processes.tail(state.serviceId, state.current.releaseId);
    if (state.status === "crashed") restarts.schedule(state, "it was waiting for a restart when the engine stopped");
    else if (state.status === "starting") state.status = "running";
  }

  async shutdown(): Promise<void> {
    await this.parts.disk.shutdown();
    this.parts.restarts.shutdown();
    await this.parts.processes.shutdown();
  }

  // ---- release steps --------------------------------------------------------------------------

  async createRelease(ctx: Ctx, releaseId: string): Promise<LocalRelease> {
    const dir = this.parts.paths.releaseDir(ctx.service.id, releaseId);
    await fsp.rm(dir, { recursive: true, force: true });
    // Passable, not listable: a service's user reaches its own checkout below, and reads nothing else here.
    await fsp.mkdir(dir, { recursive: true, mode: 0o711 });
    await fsp.chmod(path.dirname(dir), 0o711);
    return { serviceId: ctx.service.id, releaseId, dir };
  }

  async build(ctx: Ctx, release: LocalRelease): Promise<void> {
    const service = ctx.service;
    if (service.kind === "DATABASE") return this.parts.databases.prepare({ ...ctx, service }, release);
    if (service.kind !== "APPLICATION" && service.kind !== "JOB") throw new Error(`${service.kind} services have no repository`);
    const appDir = release.appDir;
    if (!appDir) throw new Error("build before clone");
    const { config } = service;
    const resources = service.kind === "APPLICATION" ? service.config.resources : undefined;
    const checkout = path.join(release.dir, "src");
    const plan = await servicePlan(checkout, appDir, service);
    ctx.output("system", describePlan(plan));
    // The toolchain's download counts against the build's time, as its steps do.
    const deadline = Date.now() + config.buildTimeoutSeconds * 1000;
    const node = plan.node ? await this.provideNode(ctx, plan.node.stated, deadline, config.buildTimeoutSeconds) : null;
    if (node) ctx.output("system", node.description);
    const toolchain = node?.kind === "toolchain" ? node : null;
    const manager = plan.packageManager ? await this.providePackageManager(ctx, plan.packageManager, node, deadline, config.buildTimeoutSeconds) : null;
    if (manager) ctx.output("system", manager.description);
    const python = plan.python ? await this.parts.python.provide(plan.python.version) : null;
    if (python) ctx.output("system", python.description);
    // Written before the checkout is handed to the service's user, who may read but not replace them before pip does.
    await writeGeneratedFiles(appDir, plan);

    // Read before the checkout is handed over (as its other files were): the cache's key.
    const installStep = plan.steps.find((step) => step.step === "install");
    const installPath = installStep ? stepDirectory(appDir, installStep) : appDir;
    const variables = Object.fromEntries(service.variables.map((variable) => [variable.key, variable.value]));
    // Yarn 1 downloads from its lockfile's URLs, not from the engine's registry (toolchains/yarn-lock.ts), unless the app names its own registry.
    if (manager?.flavor === "yarn-classic" && !appSetsRegistry(variables)) {
      const pointed = await pointYarnLockAtRegistry(checkout, installPath, this.parts.registry);
      if (pointed) ctx.output("system", pointed);
    }
    const installDir = path.relative(await fsp.realpath(checkout), installPath);
    const readInstallFile = (name: string) =>
      readRepoFile(checkout, path.join(installDir, name)).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw error;
      });
    const lockfiles = await readLockfiles(readInstallFile);
    // Whether the install can be skipped depends on the root package's scripts too (npmTreeMatches, berryInstallSkippable).
    const packageJson = manager?.flavor === "npm" || manager?.flavor === "yarn-berry" ? await readInstallFile("package.json") : null;
    const manifestPart = manager?.flavor === "yarn-berry" && packageJson !== null ? berryManifestPart(packageJson) : {};
    const versions = [
      node ? (toolchain ? `node ${toolchain.version}` : "node system") : null,
      manager ? `${manager.flavor} ${manager.version ?? "system"}` : null,
      python ? `python ${python.interpreter.version}` : null,
    ].filter((part): part is string => !!part);
    const keyParts = cacheKeyParts({ ...lockfiles, ...manifestPart }, versions, plan.kind, installStep?.display ?? "");

    // The build is untrusted code too (a dependency's install script): it runs in the service's sandbox, as its user.
    const { sandboxes } = this.parts;
    const jail = await sandboxes.jailOf(service.id, ctx.trusted);
    await sandboxes.handOver(checkout, jail);
    ctx.output(
      "system",
      jail ? `Sandbox: ${jail.user ? `user ${jail.user.uid}, ` : ""}only its checkout and home writable` : "Sandbox: none (trusted cluster)",
    );
    // Before its build runs: an install script must not probe the host's loopback either (the registry is not on it).
    const fenced = await sandboxes.fence(service.id, jail, ctx.isolateLoopback ? ctx.databasePorts : null);
    if (fenced) ctx.output("system", fenced);
    const base = { ...engineBaseEnv(), ...(jail ? { HOME: jail.home } : {}) };
    // The app's own tools first (node_modules/.bin, a virtualenv), then its package manager, Node and npm, then the host's: in the build, the release, its jobs and shells (launch.json).
    const toolchainBins = [manager?.binDir, toolchain?.binDir].filter((dir): dir is string => !!dir);
    const pathPrefix = [...plan.pathPrefix.map((dir) => path.join(appDir, dir)), ...toolchainBins];
    // The registry settings step aside for the app's own (they depend on which it sets), so they are part of the base under its variables.
    const registryEnv = manager ? packageManagerEnv(manager.flavor, this.parts.registry, variables) : {};
    // Where yarn berry keeps its packages is where the release's Plug'n'Play loads them from: the build and the release agree on it.
    const managerEnv = { ...registryEnv, ...(manager?.flavor === "yarn-berry" ? berryEnv(variables) : {}) };
    const recipe: EnvRecipe = {
      base: { ...base, ...managerEnv },
      pathPrefix,
      over: plan.kind === "python" ? { VIRTUAL_ENV: path.join(appDir, ".venv") } : {},
    };
    const env = releaseEnv(recipe, service.variables);
    // A Python outside /usr (pyenv's, under a home the sandbox hides) is shown read-only, as a toolchain is: its venv links to it.
    const pythonPrefix = python && !python.interpreter.prefix.startsWith("/usr/") ? python.interpreter.prefix : null;
    const toolchainDirs = [toolchain?.dir, manager?.dir, pythonPrefix].filter((dir): dir is string => !!dir);
    const cache = await this.parts.caches.open(service.id, keyParts, ctx.noCache ?? false, jail?.user ?? null);
    ctx.output("system", cache.line);
    const buildEnv = { ...env, ...cacheEnv(manager?.flavor ?? null, plan.kind === "python", cache.packages, variables) };
    const readonly = [...(plan.start.type === "static" ? staticServerFiles() : []), ...toolchainDirs];
    const sandbox = jail?.spec([checkout], readonly);
    // The host's trusted CAs and proxy reach the build alone, as pip's index does below; its CA files must be visible in the sandbox.
    const network = hostNetworkEnv(variables);
    const trustFiles = network.files.filter((file) => !isSystemPath(file) && readableInSandbox(file, !!jail?.user));
    // The cache is the build's alone: the release, its jobs and shells never see it.
    const buildSandbox = jail?.spec([checkout, cache.dir], [...readonly, ...trustFiles]);

    // pip's index settings reach the install only: a mirror's URL may hold a token the app need not see.
    const pipEnv = plan.kind === "python" ? Object.fromEntries(Object.entries(this.parts.pip).filter(([key]) => variables[key] === undefined)) : {};
    // What the install wrote (a package manager's install only: a Python app has none), back before the install.
    const outputs = manager && installStep ? installOutputs(manager.flavor) : [];
    const restored = outputs.length > 0 ? await this.restoreInstallOutputs(ctx, buildSandbox, cache.dir, installPath, outputs, buildEnv, deadline) : [];
    const skipInstall = await (async (): Promise<string | null> => {
      // Only the planned install of a single package: a user's install command runs as asked, a workspace's packages have node_modules of their own.
      if (!manager || !installStep || installStep.cwd || installStep.display !== installArgv({ flavor: manager.flavor, lockfile: true }).join(" ")) return null;
      if (manager.flavor === "npm") {
        const packageLock = lockfiles["package-lock.json"];
        if (!restored.includes("node_modules") || !packageJson || !packageLock || lockfiles["npm-shrinkwrap.json"] !== undefined) return null;
        const hidden = await readInstallFile("node_modules/.package-lock.json").catch(() => null);
        return hidden && npmTreeMatches(packageJson, packageLock, hidden) ? "node_modules restored from the build cache (package-lock.json unchanged)" : null;
      }
      if (manager.flavor === "yarn-berry" && packageJson && berryInstallSkippable(packageJson, restored))
        return "restored from the build cache (yarn.lock, .yarnrc.yml and package.json's dependencies unchanged)";
      return null;
    })();
    // Framework caches go back after the install (npm ci empties node_modules), before the first build step.
    const firstBuild = plan.steps.findIndex((step) => step.step === "build");
    for (const [index, step] of plan.steps.entries()) {
      if (index === firstBuild) await this.copyFrameworkCaches(ctx, buildSandbox, cache.frameworks, appDir, buildEnv);
      if (step === installStep && skipInstall) {
        ctx.output("system", `install: ${skipInstall}`);
        continue;
      }
      ctx.output("system", `$ ${stepText(step)}`);
      // The interpreter chosen above creates the virtualenv (plans/python.ts names it python3).
      const stepArgv = python && step.argv[0] === PYTHON ? [python.interpreter.path, ...step.argv.slice(1)] : step.argv;
      const tail = createLineTail();
      const cwd = stepDirectory(appDir, step);
      const result = await runCommand({
        argv: sandboxes.wrap(buildSandbox, stepArgv, { cwd, outlivesEngine: false }),
        cwd,
        env: { ...commitEnv(release.commit), ...buildEnv, ...network.env, ...pipEnv, CI: "true" },
        timeoutMs: Math.max(deadline - Date.now(), 1),
        signal: ctx.signal,
        onLine: (fd, line) => {
          ctx.output(fd, line);
          tail.push(line);
        },
      });
      // Named by its step (install or build), as the service's settings name them.
      const what = `${step.step} command \`${step.display}\``;
      if (result.aborted) throw new StepError(`${what} canceled`);
      if (result.timedOut) throw new StepError(`build timed out after ${config.buildTimeoutSeconds}s in ${what}`);
      if (result.code === 127) throw new StepError(`${what} not found (exit 127): is it installed on the engine's host?`);
      // The last lines say why in the build's own words, on the deployment's page and in the CLI (the agent shortens a long one).
      if (result.code !== 0) throw new StepError(`${what} failed (exit ${String(result.code ?? result.signal)}); its last lines:\n${tail.text()}`);
    }

    if (firstBuild >= 0) await this.copyFrameworkCaches(ctx, buildSandbox, appDir, cache.frameworks, buildEnv);
    // Kept once per entry (a restored one was made from the same lockfile); counted by settle's size limit.
    if (outputs.length > 0)
      await this.copyInSandbox(
        ctx,
        buildSandbox,
        copyInstallOutputsArgv(installPath, cache.dir, outputs),
        installPath,
        buildEnv,
        cacheCopyTimeout(deadline),
        outputs.join(", "),
      );
    ctx.output("system", await this.parts.caches.settle(service.id, cache));

    const argv =
      plan.start.type === "static"
        ? [
            process.execPath,
            "--import",
            tsxImportUrl(),
            staticServer,
            await outputDirectoryOf(appDir, plan.start.directory),
            ...(plan.start.spa ? ["--spa"] : []),
          ]
        : plan.start.argv.map((part, index) => (index === 0 && part.includes("/") && !path.isAbsolute(part) ? path.join(appDir, part) : part));
    const launchRecipe = { ...recipe, over: { ...recipe.over, SLIPWAY_RELEASE_ID: release.releaseId, SLIPWAY_GIT_COMMIT: release.commit ?? "" } };
    release.launch = {
      argv,
      cwd: appDir,
      env: releaseEnv(launchRecipe, service.variables),
      envRecipe: launchRecipe,
      secretKeys: secretKeysOf(service.variables),
      ...(resources ? { limits: resources } : {}),
      ...(sandbox ? { sandbox } : {}),
    };
    if (resources) ctx.output("system", this.describeLimits(resources));
    await this.parts.processes.writeLaunch(release.serviceId, release.releaseId, release.launch);
  }

  /**
   * Copies the framework caches (build-cache.ts) between the app and its cache entry, in the
   * build's sandbox as the service's user: both sides are the service's, whose links the engine
   * must not follow. A failure costs a warm build, never the build.
   */
  private async copyFrameworkCaches(ctx: Ctx, sandbox: SandboxSpec | undefined, from: string, to: string, env: Record<string, string>): Promise<void> {
    await this.copyInSandbox(ctx, sandbox, copyFrameworkCachesArgv(from, to), to, env, 120_000, "the framework caches");
  }

  /** Restores what the install wrote into the install's directory (copyInstallOutputsArgv); which it restored. */
  private async restoreInstallOutputs(
    ctx: Ctx,
    sandbox: SandboxSpec | undefined,
    entry: string,
    installPath: string,
    outputs: string[],
    env: Record<string, string>,
    deadline: number,
  ): Promise<string[]> {
    const started = Date.now();
    const argv = copyInstallOutputsArgv(entry, installPath, outputs);
    const said = await this.copyInSandbox(ctx, sandbox, argv, installPath, env, cacheCopyTimeout(deadline), outputs.join(", "));
    const restored = (said ?? "").split("\n").flatMap((line) => (line.startsWith("copied ") ? [line.slice("copied ".length)] : []));
    if (restored.length > 0) ctx.output("system", `Build cache: ${restored.join(", ")} restored in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return restored;
  }

  /** Runs a cache copy script in the build's sandbox; its last lines, or null (said in the build log) when it failed. */
  private async copyInSandbox(
    ctx: Ctx,
    sandbox: SandboxSpec | undefined,
    argv: string[],
    cwd: string,
    env: Record<string, string>,
    timeoutMs: number,
    what: string,
  ): Promise<string | null> {
    const tail = createLineTail();
    const result = await runCommand({
      argv: this.parts.sandboxes.wrap(sandbox, argv, { cwd, outlivesEngine: false }),
      cwd,
      env,
      timeoutMs,
      signal: ctx.signal,
      onLine: (_fd, line) => tail.push(line),
    });
    if (result.code === 0) return tail.text();
    ctx.output("system", `Build cache: could not copy ${what} (${tail.text() || `exit ${String(result.code ?? result.signal)}`})`);
    return null;
  }

  /** The Node of a build (toolchains/node.ts), its wait bounded by the build's deadline and ended by a cancel. */
  private async provideNode(ctx: Ctx, stated: NodeRequest | null, deadline: number, timeoutSeconds: number): Promise<ProvidedNode> {
    const timeout = AbortSignal.timeout(Math.max(deadline - Date.now(), 1));
    try {
      return await this.parts.node.provide(stated, AbortSignal.any([ctx.signal, timeout]), (line) => ctx.output("system", line));
    } catch (error) {
      if (ctx.signal.aborted) throw new StepError("build canceled while installing Node", { cause: error });
      if (timeout.aborted) throw new StepError(`build timed out after ${timeoutSeconds}s while installing Node`, { cause: error });
      throw error;
    }
  }

  /** The package manager of a build (toolchains/package-managers.ts), bounded and ended as Node's install is. */
  private async providePackageManager(
    ctx: Ctx,
    request: PackageManagerRequest,
    node: ProvidedNode | null,
    deadline: number,
    timeoutSeconds: number,
  ): Promise<ProvidedPackageManager> {
    const timeout = AbortSignal.timeout(Math.max(deadline - Date.now(), 1));
    try {
      return await this.parts.packageManagers.provide(request, node, AbortSignal.any([ctx.signal, timeout]), (line) => ctx.output("system", line));
    } catch (error) {
      if (ctx.signal.aborted) throw new StepError("build canceled while installing the package manager", { cause: error });
      if (timeout.aborted) throw new StepError(`build timed out after ${timeoutSeconds}s while installing the package manager`, { cause: error });
      throw error;
    }
  }

  async launch(ctx: Ctx, release: LocalRelease): Promise<ReleaseProcess> {
    if (!release.launch) throw new Error("start before build");
    const service = ctx.service;
    const kept = service.kind === "DATABASE" ? await this.parts.databases.keepOrStop({ ...ctx, service }, release) : null;
    if (kept) return kept;
    const proc = await this.parts.processes.spawn(ctx.service.id, release.releaseId, release.launch, release.commit);
    ctx.output("system", `Started ${release.launch.argv.join(" ")} as pid ${proc.pid} on port ${proc.port}`);
    return proc;
  }

  /**
   * Resolves with the process that became healthy: `launched`, or the one started in its place
   * when another process took its port before the app bound it (see untilHealthy).
   */
  async healthCheck(ctx: Ctx, launched: ReleaseProcess): Promise<ReleaseProcess> {
    const service = ctx.service;
    if (service.kind === "DATABASE") {
      await this.parts.databases.waitReady({ ...ctx, service }, launched);
      return launched;
    }
    if (service.kind !== "APPLICATION") throw new Error(`${service.kind} services have no health check`);
    const { healthCheckPath, healthCheckTimeoutSeconds } = service.config;
    const outcome = await this.untilHealthy(ctx.service.id, launched, {
      path: healthCheckPath,
      timeoutMs: healthCheckTimeoutSeconds * 1000,
      signal: ctx.signal,
      note: (line) => ctx.output("system", line),
    });
    if (outcome.healthy) return outcome.proc;
    const { proc, problem, crashed } = outcome;
    // A crash is the start command's: named as the service's settings name it, as a failed install or build is.
    const launch = crashed ? await this.parts.processes.readLaunch(ctx.service.id, proc.releaseId) : null;
    const started = launch ? `start command \`${commandText(launch.argv)}\`: ` : "";
    // Why, in the release's own words: a crash at start usually says it in its last lines (masked by the orchestrator).
    // The two files do not record how the streams interleaved: stdout's lines first, then stderr's, where a crash says why.
    const releaseDir = this.parts.paths.releaseDir(ctx.service.id, proc.releaseId);
    const output = await lastLines([RUNTIME_LOG_FILES.stdout, RUNTIME_LOG_FILES.stderr].map((file) => path.join(releaseDir, file)));
    // The caller stops the process it started; one started here in its place is this method's to stop.
    if (proc !== launched) await this.parts.processes.stop(ctx.service.id, proc);
    throw new StepError(`${started}${problem}${output ? `; its last output:\n${output}` : ""}`);
  }

  /**
   * Waits for a started release to serve (waitHealthy). Its port was free when chosen, but the app
   * binds it a moment later (seconds for a large app), and another process on the host may take it
   * in between: a release that crashed with its port now held by someone else is started again on
   * another one, up to PORT_ATTEMPTS in all, saying so.
   */
  private async untilHealthy(
    serviceId: string,
    launched: ReleaseProcess,
    check: { path: string | undefined; timeoutMs: number; signal: AbortSignal; note: (line: string) => void },
  ): Promise<{ healthy: true; proc: ReleaseProcess } | { healthy: false; proc: ReleaseProcess; problem: string; crashed: boolean }> {
    const { processes } = this.parts;
    let proc = launched;
    for (let attempt = 1; ; attempt++) {
      const current = proc;
      let crashed = false;
      const problem = await waitHealthy({
        port: current.port,
        path: check.path,
        timeoutMs: check.timeoutMs,
        signal: check.signal,
        exited: async () => {
          if (processes.isAlive(current)) return null;
          crashed = true;
          return processes.settledExitReason(current);
        },
        ownsPort: () => groupListensOn(current.pid, current.port),
      });
      if (!problem) return { healthy: true, proc: current };
      const portTaken = !check.signal.aborted && !groupListensOn(current.pid, current.port) && !(await portIsFree(current.port));
      // A release that lives on without its port (it caught the error) timed out: the port's holder is the reason.
      if (portTaken && !crashed) return { healthy: false, proc: current, problem: `${problem}; ${portHolder(current.port)}`, crashed };
      if (!portTaken || attempt >= PORT_ATTEMPTS) return { healthy: false, proc: current, problem, crashed };
      const launch = await processes.readLaunch(serviceId, current.releaseId);
      if (!launch) return { healthy: false, proc: current, problem, crashed };
      // What is left of the crashed one (a child that outlived it) goes; its log stays followed: the next one appends to it.
      await processes.forget(serviceId, current);
      proc = await processes.spawn(serviceId, current.releaseId, launch, current.commit);
      check.note(
        `Port ${current.port} was taken by another process on the engine's host before the release listened on it: started it again as pid ${proc.pid} on port ${proc.port}`,
      );
    }
  }

  stopRelease(serviceId: string, proc: ReleaseProcess): Promise<void> {
    return this.parts.processes.stop(serviceId, proc);
  }

  /**
   * The same release again, with the variables this restart resolved (a changed variable needs
   * no rebuild): its launch file is rewritten first, so the new secrets are masked from the first
   * line and a crash restart or a shell gets them too; it is put back if the fresh process fails.
   */
  async relaunch(ctx: Ctx, current: ReleaseProcess): Promise<ReleaseProcess> {
    const { processes } = this.parts;
    const launch = await processes.readLaunch(ctx.service.id, current.releaseId);
    if (!launch) throw new StepError(`release ${current.releaseId} has no launch file: deploy the service again`);
    const recipe = launch.envRecipe;
    const next = recipe ? { ...launch, env: releaseEnv(recipe, ctx.service.variables), secretKeys: secretKeysOf(ctx.service.variables) } : launch;
    this.replacedLaunches.delete(ctx.service.id);
    if (recipe) {
      this.replacedLaunches.set(ctx.service.id, { releaseId: current.releaseId, launch });
      await processes.writeLaunch(ctx.service.id, current.releaseId, next);
      processes.remask(ctx.service.id, current.releaseId);
    } else {
      ctx.output("system", `Release ${current.releaseId} predates restarts that apply variables: it restarts with the variables it was deployed with`);
    }
    try {
      const fresh = await processes.spawn(ctx.service.id, current.releaseId, next, current.commit);
      ctx.output(
        "system",
        `Started a fresh process of ${current.releaseId} as pid ${fresh.pid} on port ${fresh.port}${recipe ? ", with the current variables" : ""}`,
      );
      return fresh;
    } catch (error) {
      await this.relaunchFailed(ctx, current);
      throw error;
    }
  }

  /** The live process keeps serving with the variables it started with: so do its crash restarts and shells. */
  async relaunchFailed(ctx: Ctx, current: ReleaseProcess): Promise<void> {
    const replaced = this.replacedLaunches.get(ctx.service.id);
    this.replacedLaunches.delete(ctx.service.id);
    if (replaced?.releaseId === current.releaseId) await this.parts.processes.writeLaunch(ctx.service.id, current.releaseId, replaced.launch);
  }

  ownRestart(ctx: Ctx): Promise<void> | null {
    const service = ctx.service;
    return service.kind === "DATABASE" ? this.parts.databases.restart({ ...ctx, service }) : null;
  }

  liveState(ctx: Ctx, proc: ReleaseProcess, previous: ServiceState | undefined): ServiceState {
    // The previous release is still followed until it has drained: its offsets and bases stay.
    return { ...liveRecord(ctx.service, proc), logOffsets: previous?.logOffsets ?? {}, ...(previous?.logBases ? { logBases: previous.logBases } : {}) };
  }

  wentLive(state: ServiceState): void {
    this.replacedLaunches.delete(state.serviceId);
    this.parts.restarts.cancel(state.serviceId);
    this.parts.restarts.reset(state.serviceId);
  }

  callOff(serviceId: string): void {
    this.parts.restarts.cancel(serviceId);
  }

  async halt(ctx: Ctx, _state: ServiceState, current: ReleaseProcess): Promise<void> {
    await this.parts.processes.stop(ctx.service.id, current);
    // Read its last lines, keep the offset: a later RESTART appends to the same log.
    await this.parts.processes.pauseTail(current.releaseId);
    ctx.output("system", `Stopped release ${current.releaseId}`);
  }

  async sleep(state: ServiceState, current: ReleaseProcess): Promise<void> {
    await this.parts.processes.stop(state.serviceId, current);
    // Read its last lines, keep the offset: the wake appends to the same log.
    await this.parts.processes.pauseTail(current.releaseId);
    this.parts.serviceLog(state.serviceId, current.releaseId, `[slipway] asleep after ${state.sleep?.afterMinutes ?? "?"} min without a request`, "system");
  }

  /** The same release with the launch file it slept with, checked as its deploy was (the health check path, else the port). */
  async wake(state: ServiceState, current: ReleaseProcess): Promise<ReleaseProcess> {
    const { processes } = this.parts;
    const launch = await processes.readLaunch(state.serviceId, current.releaseId);
    if (!launch) throw new StepError(`release ${current.releaseId} has no launch file: deploy the service again`);
    // The port it had, when free: nothing else needs to change.
    const launched = await processes.spawn(state.serviceId, current.releaseId, launch, current.commit, current.port);
    const outcome = await this.untilHealthy(state.serviceId, launched, {
      path: state.sleep?.healthCheckPath,
      timeoutMs: (state.sleep?.healthCheckTimeoutSeconds ?? 60) * 1000,
      signal: new AbortController().signal,
      note: (line) => this.parts.serviceLog(state.serviceId, current.releaseId, `[slipway] ${line}`, "system"),
    });
    if (!outcome.healthy) {
      await processes.stop(state.serviceId, outcome.proc);
      await processes.pauseTail(outcome.proc.releaseId);
      throw new StepError(`the release did not wake: ${outcome.problem}`);
    }
    const fresh = outcome.proc;
    this.parts.serviceLog(state.serviceId, current.releaseId, `[slipway] woke up on a request (pid ${fresh.pid}, port ${fresh.port})`, "system");
    return fresh;
  }

  async drained(_ctx: Ctx, previous: ReleaseProcess | null, release: { serviceId: string; releaseId: string }): Promise<void> {
    if (!previous || previous.releaseId === release.releaseId) return;
    // Keep the old release's log, drop its checkout (node_modules and venvs are large).
    await fsp.rm(path.join(this.parts.paths.releaseDir(release.serviceId, previous.releaseId), "src"), { recursive: true, force: true });
    // Only the newest few releases keep even their logs (release-disk.ts).
    await this.parts.disk.pruneReleases(release.serviceId);
  }

  async discarded(handle: { serviceId: string; releaseId: string }, release: LocalRelease | undefined): Promise<void> {
    await this.parts.processes.finishTail(handle.serviceId, handle.releaseId);
    if (release) await fsp.rm(path.join(release.dir, "src"), { recursive: true, force: true });
    if (release?.stoppedServer) await this.parts.databases.restore(handle.serviceId, release.stoppedServer);
  }

  async removeReleases(serviceId: string, state: ServiceState | undefined, service: ServiceSpec | null): Promise<string> {
    if (state?.current) await this.parts.processes.stop(serviceId, state.current);
    // The current release too when it has logged nothing yet: it has no offset but is followed.
    const releases = new Set([...releasesWithOffsets(state?.logOffsets ?? {}), ...(state?.current ? [state.current.releaseId] : [])]);
    for (const releaseId of releases) await this.parts.processes.finishTail(serviceId, releaseId);
    return service?.kind === "DATABASE" ? "Removed the database's data, releases and logs" : "Removed the service's route, releases and logs";
  }

  async removeFiles(serviceId: string): Promise<void> {
    // Its rules go before its uid is given back: the next owner of the uid starts unfenced.
    await this.parts.sandboxes.unfence(serviceId);
    await fsp.rm(this.parts.paths.serviceDir(serviceId), { recursive: true, force: true });
    this.parts.sandboxes.free(serviceId);
  }

  describeUpstream(proc: ReleaseProcess): string {
    return `port ${proc.port}`;
  }

  // ---- shells, metrics, leftovers -------------------------------------------------------------

  /**
   * Starts `argv` (the release's shell when empty: `$SHELL` of its variables, else /bin/sh) in the
   * live release's app directory with its variables (launch.json), as the app itself sees them.
   */
  async exec(serviceId: string, argv: string[], options: ExecOptions): Promise<ExecSession> {
    const state = this.parts.store.get(serviceId);
    const current = state?.current;
    if (!current || state.status === "stopped") throw new StepError("the service has no running release");
    if (state.status === "sleeping") throw new StepError("the service is asleep: a request to it wakes it");
    const launch = await this.parts.processes.readLaunch(serviceId, current.releaseId);
    if (!launch) throw new StepError(`release ${current.releaseId} has no launch file`);
    const env: Record<string, string> = { ...launch.env, PORT: String(current.port), ...options.env };
    if (options.tty) env.TERM = "xterm-256color";
    const command = argv.length > 0 ? argv : [env.SHELL || "/bin/sh"];
    // The shell gets the release's sandbox: what the app can see, as the app's user, and nothing more.
    // A terminal of its own inside (script, util-linux): the outer one's process groups are not in
    // the sandbox's PID namespace, so a shell could not take it over for job control.
    const inner = options.tty && launch.sandbox ? ["script", "--quiet", "--return", "--command", shellQuote(command), "/dev/null"] : command;
    return startLocalExec(this.parts.sandboxes.wrap(launch.sandbox, inner, { cwd: launch.cwd, outlivesEngine: false }), { ...options, cwd: launch.cwd, env });
  }

  async sample(serviceId: string): Promise<ServiceSample> {
    const state = this.parts.store.get(serviceId);
    const current = state?.current;
    if (!state || !current) throw new StepError("the service has no running release");
    const usage = state.status === "running" ? await sampleGroup(current.pid) : { cpuPercent: 0, memoryBytes: 0 };
    return { at: new Date().toISOString(), ...usage, memoryLimitBytes: current.cgroups ? memoryLimitOf(current.cgroups) : null, restarts: state.restarts };
  }

  /**
   * Every service directory on disk with its size in bytes (`du`, which counts what the disk
   * holds: blocks, not the apparent size, which a runtime log freed in place keeps; release-disk.ts).
   */
  async inventory(): Promise<DiskUsage[]> {
    const { paths } = this.parts;
    const ids = (await fsp.readdir(paths.servicesDir).catch(() => [])).filter(isServiceId);
    if (ids.length === 0) return [];
    const { stdout } = await execFileAsync("du", ["-s", "--block-size=1", ...ids.map((id) => paths.serviceDir(id))], { maxBuffer: 16 * 1024 * 1024 }).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }),
    );
    const sizes = new Map(
      stdout.split("\n").flatMap((line) => {
        const [bytes, dir] = line.split("\t");
        return bytes && dir ? [[path.basename(dir), Number(bytes)] as const] : [];
      }),
    );
    return ids.map((serviceId) => ({ serviceId, bytes: sizes.get(serviceId) ?? 0 }));
  }

  private describeLimits(limits: { memoryMb?: number; cpus?: number }): string {
    const asked = [limits.memoryMb !== undefined ? `memory ${limits.memoryMb} MiB` : null, limits.cpus !== undefined ? `${limits.cpus} CPU` : null]
      .filter(Boolean)
      .join(", ");
    const host = this.parts.cgroups;
    if (host.kind === "none") return `Limits (${asked}) are NOT enforced on this host: ${host.reason}`;
    if (host.kind === "cgroup-v1" && limits.cpus !== undefined && !host.cpu)
      return `Limits: ${asked} through cgroup v1; the CPU limit is NOT enforced (no writable cpu hierarchy)`;
    return `Limits: ${asked}, enforced through ${host.kind}`;
  }
}

/** Who holds a release's port instead of it, as far as this host's /proc tells. */
function portHolder(port: number): string {
  const pids = pidsListeningOn(port);
  return `port ${port} is held by another process on the engine's host${pids.length > 0 ? ` (pid ${pids.join(", ")})` : ""}, not the release`;
}

/**
 * What the files say last, one after the other, as a failure quotes a command's output
 * (createLineTail: the last lines, and the first that says what went wrong). Of each file, its
 * last 16 KiB at most: a crash at start prints little, and a release's log may be long.
 */
async function lastLines(files: string[]): Promise<string> {
  const tail = createLineTail();
  for (const file of files) for (const line of (await fileEnd(file, 16 * 1024)).split("\n")) tail.push(line);
  return tail.text();
}

/** The last `bytes` of a file as text; empty when it cannot be read (the failure is then said without it). */
async function fileEnd(file: string, bytes: number): Promise<string> {
  const handle = await fsp.open(file, "r").catch(() => null);
  if (!handle) return "";
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString("utf8");
  } finally {
    await handle.close();
  }
}

/** A start command as the user wrote it (`/bin/sh -c <command>` is how the plan runs one), else its argv. */
function commandText(argv: string[]): string {
  return argv[0] === "/bin/sh" && argv[1] === "-c" && argv.length === 3 ? argv[2]! : argv.join(" ");
}

/** One POSIX shell word per argument, for `script --command`, which runs its string through a shell. */
function shellQuote(argv: string[]): string {
  return argv.map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(" ");
}

/** Where a build step runs: the app's directory, or the repository root for a workspace app's install. */
function stepDirectory(appDir: string, step: PlanCommand): string {
  return step.cwd ? path.join(appDir, step.cwd) : appDir;
}

/** A static site's output directory after its build: there, a directory, and inside the app (not through a link out of it). */
async function outputDirectoryOf(appDir: string, directory: string): Promise<string> {
  const shown = directory === "." ? "the app's directory" : `output directory ${directory}/`;
  let real: string;
  try {
    real = await fsp.realpath(path.join(appDir, directory));
  } catch {
    throw new StepError(`${shown} does not exist after the build: check the build, or set the service's output directory`);
  }
  const root = await fsp.realpath(appDir);
  if (real !== root && !real.startsWith(`${root}${path.sep}`)) throw new StepError(`${shown} points outside the app's directory`);
  if (!(await fsp.stat(real)).isDirectory()) throw new StepError(`${shown} is not a directory`);
  return real;
}

/** A node_modules copy is bounded by the build's time left, and by five minutes: a slower one costs more than the install it saves. */
function cacheCopyTimeout(deadline: number): number {
  return Math.max(Math.min(deadline - Date.now(), 300_000), 1);
}
