import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type Docker from "dockerode";
import type { GitServiceSpec } from "../../protocol";
import { type BuildPlan, describePlan, type PlanStep, stepText } from "../build-plan";
import { StepError, type StepOutput, type StepResult } from "../runtime";
import { createLineTail } from "../shared/commands";
import { commitEnv } from "../shared/git";
import { cacheEnv } from "../local/build-cache";
import { servicePlan, writeGeneratedFiles } from "../service-plan";
import type { NodeToolchains, ProvidedNode } from "../toolchains/node";
import { appSetsRegistry, packageManagerEnv, type PackageManagerToolchains, type ProvidedPackageManager } from "../toolchains/package-managers";
import { pointYarnLockAtRegistry } from "../toolchains/yarn-lock";
import { ensureImage, imageExists, imageRepository, resolveBuildArgs, runImageBuild } from "./images";
import { installLayer } from "./install-layer";
import { staticServerBundle } from "./static-server-bundle";

const execFileAsync = promisify(execFile);

/** Where the image holds what the engine puts in it: Node, the package manager, the static server. */
const TOOLS = "/opt/slipway";
/** Where the repository is in the image (the whole of it: a workspace app installs at its root). */
const REPOSITORY = "/app";
/** A line a build step prints before it runs, so the engine knows which step the output and a failure belong to. */
const STEP_MARK = "::slipway-step::";
/** The generated Dockerfile, beside the checkout in the release's build directory (the build context). */
const DOCKERFILE = "Dockerfile.slipway";
/** Where the install's package manager keeps its downloads: a cache mount of the service's own, kept by the builder between builds. */
const DOWNLOAD_CACHE = "/var/cache/slipway-downloads";
/**
 * The commit, for build steps that would ask git (the source goes in without .git: shared/git.ts
 * commitEnv). Declared after the source is copied: a value that changes with each commit would
 * otherwise rebuild the install's layer every time.
 */
const COMMIT_ARGS = Object.keys(commitEnv("0")).map((name) => `ARG ${name}`);

export type PlanImageSettings = {
  node: NodeToolchains;
  packageManagers: PackageManagerToolchains;
  /** The npm registry toolchains come from, and the app's dependencies when it is a mirror (as on the local runtime). */
  registry: string;
  /** PIP_* of the engine's environment: the package index of Python installs, unless the app's build arguments say. */
  pip: Record<string, string>;
  /** The image builds start from (SLIPWAY_DOCKER_BUILD_IMAGE); unset: Debian's, or Python's for a Python app. */
  baseImage?: string;
  /** The network of the build's steps (SLIPWAY_DOCKER_BUILD_NETWORK): `host` reaches a registry mirror on the host's loopback. */
  network?: string;
};

/** The image builds start from when the engine names none: glibc and a shell (Node is the engine's), or Python's own image. */
export function defaultBaseImage(plan: BuildPlan): string {
  if (plan.kind !== "python") return "docker.io/library/debian:bookworm-slim";
  const version = plan.python?.version?.parts.slice(0, 2).join(".") ?? "3.12";
  return `docker.io/library/python:${version}-slim-bookworm`;
}

/**
 * Builds the image of an app that has no Dockerfile from its build plan, the one the local
 * runtime runs (shared/service-plan.ts), so that an app deploys on either kind of cluster without
 * change (issue 14, item 6): the plan is shown in the build log, Node and the package manager
 * come from the engine's toolchain store (installed from its npm registry, never from the base
 * image), the install and build steps run as the image's RUN steps, and the release starts the
 * plan's start command, or the engine's static server over the output directory.
 */
export type PlanImageBuild = {
  docker: Docker;
  service: GitServiceSpec;
  /** The release's build directory: the checkout is its `src`, the build context is the directory itself. */
  releaseDir: string;
  appDir: string;
  commit: string;
  /** The deployment asked for a build without the build cache: no image, layer or download cache is reused. */
  noCache: boolean;
  settings: PlanImageSettings;
  signal: AbortSignal;
  output: StepOutput;
};

export async function buildPlanImage(options: PlanImageBuild): Promise<{ image: string; result: StepResult }> {
  const { docker, service, settings, output } = options;
  const checkout = path.join(options.releaseDir, "src");
  const plan = await servicePlan(checkout, options.appDir, service);
  output("system", describePlan(plan));
  const deadline = Date.now() + service.config.buildTimeoutSeconds * 1000;
  // A static site is served by the engine's static server, a Node program, whether the app runs on Node or not.
  const node = plan.node || plan.start.type === "static" ? await provideNode(options, plan.node?.stated ?? null, deadline) : null;
  if (node) output("system", plan.node ? node.description : `Static server: ${node.description}`);
  const manager = plan.packageManager ? await provideManager(options, plan.packageManager, node, deadline) : null;
  if (manager) output("system", manager.description);
  const baseImage = settings.baseImage ?? defaultBaseImage(plan);
  if (plan.python)
    output(
      "system",
      `Python: the python3 of ${baseImage}${settings.baseImage ? " (SLIPWAY_DOCKER_BUILD_IMAGE)" : plan.python.version ? ` (${plan.python.version.source} "${plan.python.version.spec}")` : ""}`,
    );
  await writeGeneratedFiles(options.appDir, plan);

  const appPath = path.relative(await fsp.realpath(checkout), options.appDir);
  const buildArgs = resolveBuildArgs(service);
  const variables = Object.fromEntries(buildArgs);
  const pip = plan.kind === "python" ? Object.fromEntries(Object.entries(settings.pip).filter(([key]) => variables[key] === undefined)) : {};
  const layer = await installLayer(plan, checkout, options.appDir, service.config.installCommand !== undefined);
  output("system", layer.line);
  const downloads = cacheEnv(manager?.flavor ?? null, plan.kind === "python", DOWNLOAD_CACHE, variables);
  // Podman's builder keeps a cache mount between builds; Docker's classic builder refuses the flag (BuildKit only).
  // Without the cache, the install downloads into its own layer (the mount cannot be emptied through the Engine API).
  const cacheMount = !options.noCache && Object.keys(downloads).length > 0 && (await isPodman(docker)) ? { id: `slipway-${service.id}`, env: downloads } : null;
  const dockerfile = planDockerfile({
    plan,
    appPath,
    baseImage,
    node,
    manager,
    env: manager ? packageManagerEnv(manager.flavor, settings.registry, variables) : {},
    buildArgNames: [...buildArgs.map(([name]) => name), ...Object.keys(pip)],
    installFiles: layer.files,
    cacheMount,
  });
  const staticServer = plan.start.type === "static" ? await staticServerBundle() : null;
  // Everything the image is made of: a new Node of the same range, or a new engine's static server, is a new image.
  const inputs = {
    v: 1,
    commit: options.commit,
    rootDirectory: service.config.git.rootDirectory,
    dockerfile,
    toolchains: [node?.kind === "toolchain" ? `node ${node.version}` : null, manager ? `${manager.flavor} ${manager.version ?? "with node"}` : null],
    staticServer: staticServer && createHash("sha256").update(staticServer).digest("hex"),
    buildArgs,
    pip,
    network: settings.network,
  };
  const tag = createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 24);
  const image = `${imageRepository(service)}:${tag}`;
  if (options.noCache) output("system", "Build cache: skipped (--no-cache): no image, layer or download cache is reused");
  else if (await imageExists(docker, image)) {
    output("system", `Image ${image} was built from this commit and this plan already; skipping the build`);
    return { image, result: { message: `unchanged: reusing image ${image}` } };
  }
  await ensureImage({ docker, image: baseImage, signal: options.signal, output });

  const context = options.releaseDir;
  await fsp.mkdir(path.join(context, "slipway"));
  if (node?.kind === "toolchain") await copyTree(node.dir, path.join(context, "slipway", "node"));
  if (manager?.dir) await copyTree(manager.dir, path.join(context, "slipway", "package-manager"));
  if (staticServer) await fsp.writeFile(path.join(context, "slipway", "static-server.cjs"), staticServer);
  await fsp.writeFile(path.join(context, DOCKERFILE), dockerfile);
  // Yarn 1 downloads from its lockfile's URLs, not from the engine's registry (toolchains/yarn-lock.ts), unless the app names its own registry.
  if (manager?.flavor === "yarn-classic" && !appSetsRegistry(Object.fromEntries(service.variables.map((variable) => [variable.key, variable.value])))) {
    const install = plan.steps.find((step) => step.step === "install");
    const pointed = await pointYarnLockAtRegistry(checkout, install?.cwd ? path.join(options.appDir, install.cwd) : options.appDir, settings.registry);
    if (pointed) output("system", pointed);
  }
  const sources = (await fsp.readdir(checkout)).filter((entry) => entry !== ".git").map((entry) => `src/${entry}`);

  output("system", `Building the plan into ${image}, from ${baseImage}`);
  const steps = [...plan.steps, ...(plan.start.type === "static" ? [outputCheck(plan.start.directory)] : [])];
  let current: number | null = null;
  let tail = createLineTail();
  // A step the builder took from its cache never prints its mark: the ones before `until` that did not are said so.
  const sayCached = (until: number) => {
    for (let index = (current ?? -1) + 1; index < until; index++) {
      const step = steps[index]!;
      if (step.step !== "check") output("system", `${step.step}: unchanged, reused from the image cache (\`${step.display}\`)`);
    }
  };
  const failure = await runImageBuild({
    docker,
    service,
    commit: options.commit,
    image,
    context: { context, src: [DOCKERFILE, "slipway", ...sources] },
    options: {
      dockerfile: DOCKERFILE,
      buildargs: { ...variables, ...pip, ...commitEnv(options.commit) },
      nocache: options.noCache,
      ...(settings.network ? { networkmode: settings.network } : {}),
    },
    signal: options.signal,
    onLine: (fd, line) => {
      if (line.startsWith(STEP_MARK)) {
        const index = Number(line.slice(STEP_MARK.length));
        sayCached(index);
        current = index;
        tail = createLineTail();
        const step = steps[current];
        if (step && step.step !== "check") output("system", `$ ${stepText(step)}`);
        return;
      }
      // The builder's own lines (its instructions, layer ids) are not the app's: the plan was shown above.
      if (current === null || BUILDER_LINE.test(line)) return;
      output(fd, line);
      tail.push(line);
    },
  });
  if (failure) throw new StepError(describeFailure(failure, current === null ? null : (steps[current] ?? null), tail.text(), baseImage));
  sayCached(steps.length);
  output("system", `Built ${image}`);
  return { image, result: {} };
}

/** A step of the image's build: the plan's install and build steps, then the check that a static site's output directory is there. */
type ImageStep = PlanStep | { step: "check"; argv: string[]; display: string; directory: string; cwd?: undefined };

function outputCheck(directory: string): ImageStep {
  return { step: "check", argv: ["test", "-d", directory], display: `test -d ${directory}`, directory };
}

/** What Podman (STEP n/m:, COMMIT, -->) and Docker (Step n/m :, --->, Successfully) say about the build itself. */
const BUILDER_LINE =
  /^(STEP \d+\/\d+: |Step \d+\/\d+ : |-->|--->|COMMIT |Successfully (built|tagged) |Removing intermediate container |Getting image source signatures|Copying (blob|config) |Writing manifest|Storing signatures)/;

/** A failed build, named as the local runtime names it: the step and its command, its exit code and its last lines. */
function describeFailure(failure: string, step: ImageStep | null, tail: string, baseImage: string): string {
  const last = failure.trim().split("\n").at(-1) ?? failure;
  if (!step) return `docker build failed: ${last}`;
  // Podman: "exit status 3"; Docker: "returned a non-zero code: 3"; BuildKit: "exit code: 3".
  const code = /(?:exit status|non-zero code:|exit code:)\s*(\d+)/.exec(failure)?.[1] ?? "unknown";
  if (step.step === "check") {
    const shown = step.directory === "." ? "the app's directory" : `output directory ${step.directory}/`;
    return `${shown} does not exist after the build: check the build, or set the service's output directory`;
  }
  const what = `${step.step} command \`${step.display}\``;
  if (code === "127") return `${what} not found (exit 127): is it in the build image (${baseImage})?`;
  return `${what} failed (exit ${code}); its last lines:\n${tail}`;
}

/**
 * The Dockerfile of a plan: the engine's toolchains first (a layer that stays cached while they
 * do), then the files the install reads, the install, the rest of the repository (or the whole
 * repository first, when the install may read any of it: install-layer.ts), each step as a RUN in
 * exec form (no shell between the plan's argv and the builder: a shell command of the user's is
 * `/bin/sh -c <command>` in the plan already), and the start as CMD. Values go in as JSON strings
 * or escaped, never as Dockerfile syntax. The install's downloads go to a cache mount of the
 * service's own when the builder keeps one (Podman's; never shared between services: a cache may
 * hold what a service's secrets fetched).
 */
export function planDockerfile(input: {
  plan: BuildPlan;
  appPath: string;
  baseImage: string;
  node: ProvidedNode | null;
  manager: ProvidedPackageManager | null;
  env: Record<string, string>;
  buildArgNames: string[];
  /** The files the install reads (install-layer.ts), copied before it; null: the whole source goes in first. */
  installFiles: string[] | null;
  /** The builder's cache mount for the package manager's downloads (its id, the variables pointing the tools at it), or none. */
  cacheMount: { id: string; env: Record<string, string> } | null;
}): string {
  const { plan } = input;
  const appPathPosix = input.appPath.split(path.sep).join("/");
  const appDir = path.posix.join(REPOSITORY, appPathPosix);
  const inApp = (relative: string) => path.posix.join(appDir, relative);
  const toolBins = [input.manager?.dir ? `${TOOLS}/package-manager/bin` : null, input.node ? `${TOOLS}/node/bin` : null].filter((dir): dir is string => !!dir);
  const pathPrefix = [...plan.pathPrefix.map(inApp), ...toolBins];
  const env: Record<string, string> = { ...input.env, ...(plan.kind === "python" ? { VIRTUAL_ENV: inApp(".venv") } : {}) };
  const steps: ImageStep[] = [...plan.steps, ...(plan.start.type === "static" ? [outputCheck(plan.start.directory)] : [])];
  const lastInstall = steps.findLastIndex((step) => step.step === "install");
  // The install's files before it, the rest after it; with no install, the whole source before any step.
  const installFirst = lastInstall >= 0 ? input.installFiles : null;
  const lines = [
    "# Generated by the Slipway engine from the app's build plan (the repository has no Dockerfile):",
    `# ${describePlan(plan).replace(/\s+/g, " ")}`,
    `FROM ${input.baseImage}`,
    ...(input.node || input.manager?.dir || plan.start.type === "static" ? [`COPY slipway ${TOOLS}`] : []),
    `ENV PATH=${escapeValue(pathPrefix.join(":"))}${pathPrefix.length > 0 ? ":" : ""}$PATH`,
    ...Object.entries(env).map(([key, value]) => `ENV ${key}=${escapeValue(value)}`),
    // The install's files, then the install, then the rest: a commit that leaves them as they are reuses the install's layer.
    ...(installFirst
      ? installFirst.map((file) => `COPY ${JSON.stringify([path.posix.join("src", appPathPosix, file), inApp(file)])}`)
      : [`COPY src ${REPOSITORY}`]),
    `WORKDIR ${escapeValue(appDir)}`,
    // Build-only: CI for the package managers (frozen installs, no prompts), and the build arguments the service names.
    "ARG CI=true",
    ...input.buildArgNames.map((name) => `ARG ${name}`),
    ...(installFirst ? [] : COMMIT_ARGS),
    ...steps.flatMap((step, index) => {
      const dir = step.cwd ? path.posix.join(appDir, step.cwd) : appDir;
      const cache = step.step === "install" ? input.cacheMount : null;
      const mount = cache ? ` --mount=type=cache,id=${cache.id},target=${DOWNLOAD_CACHE}` : "";
      const env = cache ? ["env", ...Object.entries(cache.env).map(([key, value]) => `${key}=${value}`)] : [];
      // The mark, then the step in its directory: `$0` is the mark, `$1` the directory, the rest the step's argv.
      const run = `RUN${mount} ${JSON.stringify(["/bin/sh", "-c", 'echo "$0" && cd "$1" && shift && exec "$@"', `${STEP_MARK}${index}`, dir, ...env, ...step.argv])}`;
      return installFirst && index === lastInstall ? [run, `COPY src ${REPOSITORY}`, ...COMMIT_ARGS] : [run];
    }),
    `CMD ${JSON.stringify(startArgv(plan, inApp))}`,
    "",
  ];
  return lines.join("\n");
}

function startArgv(plan: BuildPlan, inApp: (relative: string) => string): string[] {
  if (plan.start.type === "static") {
    return [`${TOOLS}/node/bin/node`, `${TOOLS}/static-server.cjs`, inApp(plan.start.directory), ...(plan.start.spa ? ["--spa"] : []), "--host", "0.0.0.0"];
  }
  // A relative program (node_modules/.bin/next, .venv/bin/gunicorn) is the app's: as on the local runtime.
  return plan.start.argv.map((part, index) => (index === 0 && part.includes("/") && !path.posix.isAbsolute(part) ? inApp(part) : part));
}

/** A value for ENV and WORKDIR, where the builder expands `$` and splits on spaces: quoted, with `\`, `"` and `$` escaped. */
function escapeValue(value: string): string {
  if (/[\r\n]/.test(value)) throw new StepError(`a value with a line break cannot go into the image's environment: ${JSON.stringify(value)}`);
  return `"${value.replace(/[\\"$]/g, (char) => `\\${char}`)}"`;
}

/** Whether the builder behind the Engine API is Podman's (Components[0].Name "Podman Engine"), asked once per client. */
const podmanClients = new WeakMap<Docker, Promise<boolean>>();
function isPodman(docker: Docker): Promise<boolean> {
  let answer = podmanClients.get(docker);
  if (!answer) {
    answer = docker.version().then(
      (version) => (version.Components ?? []).some((component) => /podman/i.test(component.Name)),
      () => false,
    );
    podmanClients.set(docker, answer);
  }
  return answer;
}

/** A toolchain into the build context: hard links where the store and the build directory share a file system, else a copy. */
async function copyTree(from: string, to: string): Promise<void> {
  try {
    await execFileAsync("cp", ["-al", "--", from, to]);
  } catch {
    await fsp.rm(to, { recursive: true, force: true });
    await execFileAsync("cp", ["-a", "--", from, to]);
  }
}

/**
 * The Node of the image (toolchains/node.ts), bounded by the build's deadline and ended by a
 * cancel. The engine host's own Node (SLIPWAY_NODE_VERSION=system) is not an image's to run.
 */
async function provideNode(
  options: { settings: PlanImageSettings; signal: AbortSignal; output: StepOutput; service: GitServiceSpec },
  stated: Parameters<NodeToolchains["provide"]>[0],
  deadline: number,
): Promise<ProvidedNode> {
  const timeout = AbortSignal.timeout(Math.max(deadline - Date.now(), 1));
  let node: ProvidedNode;
  try {
    node = await options.settings.node.provide(stated, AbortSignal.any([options.signal, timeout]), (line) => options.output("system", line));
  } catch (error) {
    if (options.signal.aborted) throw new StepError("build canceled while installing Node", { cause: error });
    if (timeout.aborted) throw new StepError(`build timed out after ${options.service.config.buildTimeoutSeconds}s while installing Node`, { cause: error });
    throw error;
  }
  if (node.kind === "system")
    throw new StepError(
      "the app names no Node version and SLIPWAY_NODE_VERSION is system, the engine host's own Node, which an image cannot run: set SLIPWAY_NODE_VERSION to lts or a version, or the service's nodeVersion",
    );
  return node;
}

/** The package manager of the image (toolchains/package-managers.ts), bounded and ended as Node's install is. */
async function provideManager(
  options: { settings: PlanImageSettings; signal: AbortSignal; output: StepOutput; service: GitServiceSpec },
  request: NonNullable<BuildPlan["packageManager"]>,
  node: ProvidedNode | null,
  deadline: number,
): Promise<ProvidedPackageManager> {
  const timeout = AbortSignal.timeout(Math.max(deadline - Date.now(), 1));
  try {
    return await options.settings.packageManagers.provide(request, node, AbortSignal.any([options.signal, timeout]), (line) => options.output("system", line));
  } catch (error) {
    if (options.signal.aborted) throw new StepError("build canceled while installing the package manager", { cause: error });
    if (timeout.aborted)
      throw new StepError(`build timed out after ${options.service.config.buildTimeoutSeconds}s while installing the package manager`, { cause: error });
    throw error;
  }
}
