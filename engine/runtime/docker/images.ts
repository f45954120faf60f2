import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import type Docker from "dockerode";
import { type ContainerServiceSpec, dockerBuildConfig, type GitServiceSpec, registryHostOf } from "../../protocol";
import { appDirectory } from "../shared/git";
import { proxyBuildArgs } from "../shared/processes-env";
import { StepError, type StepOutput, type StepResult } from "../runtime";
import { secretMasker } from "../secret-mask";
import { describeError, statusCodeOf } from "./docker-host";
import { LABELS } from "./state";
import { jsonLines } from "./streams";

/** The repository of a service's built images: local only (never pushed), one per service. */
export function imageRepository(service: { id: string; name: string }): string {
  return `localhost/slipway/${service.name}-${service.id.slice(0, 8)}`;
}

/**
 * The tag of an APPLICATION's image: a hash of everything the build reads, so an unchanged
 * build is recognized by the tag alone. Build argument values are inputs too (they are baked into
 * the image's history anyway; Docker warns against secrets in build arguments).
 */
export function buildInputsTag(inputs: {
  commit: string;
  rootDirectory: string;
  context: string;
  dockerfile: string;
  target?: string;
  buildArgs: [string, string][];
}): string {
  const hash = createHash("sha256")
    .update(JSON.stringify({ v: 1, ...inputs }))
    .digest("hex");
  return hash.slice(0, 24);
}

export async function imageExists(docker: Docker, reference: string): Promise<boolean> {
  try {
    await docker.getImage(reference).inspect();
    return true;
  } catch (error) {
    if (statusCodeOf(error) === 404) return false;
    throw new StepError(`could not inspect image ${reference}: ${describeError(error)}`);
  }
}

/** Where a service's Dockerfile is: its build context, and the path the build log shows. */
export type FoundDockerfile = { contextDir: string; shown: string };

/**
 * The service's Dockerfile (docker.dockerfile in docker.context, `Dockerfile` at the app's root
 * unless set), or null when there is none where none was asked for: the app is then built from
 * its detected build plan (plan-image.ts), as the local runtime builds it. A Dockerfile the
 * service names and the repository lacks is an error, not a reason to guess.
 */
export async function findDockerfile(service: GitServiceSpec, appDir: string): Promise<FoundDockerfile | null> {
  const defaults = dockerBuildConfig.parse({});
  const settings = (service.kind === "APPLICATION" ? service.config.docker : undefined) ?? defaults;
  const contextDir = await appDirectory(appDir, settings.context).catch((error: unknown) => {
    throw new StepError(`build context "${settings.context}": ${(error as Error).message}`);
  });
  const shown = path.posix.join(service.config.git.rootDirectory || ".", settings.context || ".", settings.dockerfile);
  if ((await fs.stat(path.join(contextDir, settings.dockerfile)).catch(() => null))?.isFile()) return { contextDir, shown };
  if (settings.dockerfile === defaults.dockerfile) return null;
  throw new StepError(`no Dockerfile at ${shown}, which the service's docker.dockerfile names`);
}

/** Builds the image of a service from git (an APPLICATION or a JOB) from its Dockerfile, or reuses the image built from the same inputs. */
export async function buildGitImage(options: {
  docker: Docker;
  service: GitServiceSpec;
  dockerfile: FoundDockerfile;
  commit: string;
  /** The deployment asked for a build without the build cache: no image or layer is reused. */
  noCache: boolean;
  signal: AbortSignal;
  output: StepOutput;
}): Promise<{ image: string; result: StepResult }> {
  const { docker, service, output } = options;
  const settings = (service.kind === "APPLICATION" ? service.config.docker : undefined) ?? dockerBuildConfig.parse({});
  const { contextDir, shown } = options.dockerfile;
  const buildArgs = resolveBuildArgs(service);
  const tag = buildInputsTag({
    commit: options.commit,
    rootDirectory: service.config.git.rootDirectory,
    context: settings.context,
    dockerfile: settings.dockerfile,
    target: settings.target,
    buildArgs,
  });
  const image = `${imageRepository(service)}:${tag}`;
  if (!options.noCache && (await imageExists(docker, image))) {
    output("system", `Image ${image} was built from this commit and these build inputs already; skipping the build`);
    return { image, result: { message: `unchanged: reusing image ${image}` } };
  }

  output("system", `Building ${shown}${settings.target ? ` (target ${settings.target})` : ""} into ${image}`);
  const entries = (await fs.readdir(contextDir)).filter((entry) => entry !== ".git");
  const failure = await runImageBuild({
    docker,
    service,
    commit: options.commit,
    image,
    context: { context: contextDir, src: entries },
    options: {
      dockerfile: settings.dockerfile,
      ...(settings.target ? { target: settings.target } : {}),
      buildargs: Object.fromEntries(buildArgs),
      nocache: options.noCache,
    },
    signal: options.signal,
    onLine: (fd, line) => output(fd, line),
  });
  if (failure) {
    output("stderr", failure);
    throw new StepError(`docker build failed: ${failure.trim().split("\n").at(-1)}`);
  }
  output("system", `Built ${image}`);
  return { image, result: {} };
}

/** The build arguments the service names (docker.buildArgs), each the value of a variable of its own. */
export function resolveBuildArgs(service: GitServiceSpec): [string, string][] {
  const settings = (service.kind === "APPLICATION" ? service.config.docker : undefined) ?? dockerBuildConfig.parse({});
  const values = new Map(service.variables.map((variable) => [variable.key, variable.value]));
  return settings.buildArgs.map((name) => {
    const value = values.get(name);
    if (value === undefined) throw new StepError(`build argument ${name} names no variable of the service`);
    return [name, value];
  });
}

/**
 * Runs one image build through the Engine API (dockerode packs the context and applies its
 * .dockerignore, util.prepareBuildContext), with the engine's outbound proxy as build arguments
 * (proxyBuildArgs), its output line by line to `onLine` (the builder's error message is returned,
 * not sent there); bounded by the
 * service's build timeout and ended by a cancel. Returns the builder's error message when the
 * build failed, null when it produced `image`.
 */
export async function runImageBuild(options: {
  docker: Docker;
  service: GitServiceSpec;
  commit: string;
  image: string;
  context: { context: string; src: string[] };
  options: { dockerfile: string; target?: string; buildargs: Record<string, string>; networkmode?: string; nocache: boolean };
  signal: AbortSignal;
  onLine: (fd: "stdout" | "stderr", line: string) => void;
}): Promise<string | null> {
  const { docker, service, image, onLine } = options;
  const timeout = AbortSignal.timeout(service.config.buildTimeoutSeconds * 1000);
  const signal = AbortSignal.any([options.signal, timeout]);
  let failure: string | null = null;
  try {
    const stream = (await docker.buildImage(options.context, {
      t: image,
      ...options.options,
      // The engine's proxy reaches the build's RUN steps as the local runtime's builds get it; not an input of the image's tag.
      buildargs: { ...proxyBuildArgs(options.options.buildargs), ...options.options.buildargs },
      labels: { [LABELS.managed]: "1", [LABELS.serviceId]: service.id, [LABELS.commit]: options.commit },
      rm: true,
      forcerm: true,
      abortSignal: signal,
    })) as unknown as Readable;
    signal.addEventListener("abort", () => stream.destroy(), { once: true });
    await jsonLines(stream, (message) => {
      if (typeof message.stream === "string") for (const line of message.stream.replace(/\n$/, "").split("\n")) if (line.trim()) onLine("stdout", line);
      if (typeof message.status === "string") onLine("stdout", message.status);
      if (message.error !== undefined) failure = typeof message.error === "string" ? message.error : JSON.stringify(message.error);
    });
  } catch (error) {
    if (!signal.aborted) throw new StepError(`docker build failed: ${describeError(error)}`);
  }
  if (options.signal.aborted) throw new StepError("build canceled");
  if (timeout.aborted) throw new StepError(`build timed out after ${service.config.buildTimeoutSeconds}s`);
  if (failure) return String(failure);
  if (!(await imageExists(docker, image))) throw new StepError(`docker build ended without producing ${image}`);
  return null;
}

/** Makes a CONTAINER's image available: used as it is when present, pulled (with the credentials) only when missing. */
export function ensureContainerImage(options: {
  docker: Docker;
  service: ContainerServiceSpec;
  signal: AbortSignal;
  output: StepOutput;
}): Promise<{ image: string; result: StepResult }> {
  const { name, tag, credentials } = options.service.config.image;
  return ensureImage({ docker: options.docker, image: `${name}:${tag}`, credentials, signal: options.signal, output: options.output });
}

/** Makes an image available (a CONTAINER's, the base of a plan's build): used as it is when present, pulled only when missing. */
export async function ensureImage(options: {
  docker: Docker;
  image: string;
  credentials?: { username: string; password: string };
  signal: AbortSignal;
  output: StepOutput;
}): Promise<{ image: string; result: StepResult }> {
  const { docker, output, image, credentials } = options;
  const name = repositoryOf(image);
  const mask = secretMasker(credentials ? [{ key: "registry password", value: credentials.password, secret: true }] : []);
  if (await imageExists(docker, image)) {
    output("system", `Image ${image} is present on the container engine; no pull needed`);
    return { image, result: { message: `image ${image} present` } };
  }
  const registry = registryHostOf(name);
  output("system", `Pulling ${image}${credentials ? ` as ${credentials.username} on ${registry}` : ""}`);
  let failure: string | null = null;
  try {
    const stream = (await docker.pull(image, {
      abortSignal: options.signal,
      ...(credentials ? { authconfig: { username: credentials.username, password: credentials.password, serveraddress: registry } } : {}),
    })) as unknown as Readable;
    options.signal.addEventListener("abort", () => stream.destroy(), { once: true });
    await jsonLines(stream, (message) => {
      if (typeof message.status === "string") output("stdout", mask(`${message.status}${typeof message.progress === "string" ? ` ${message.progress}` : ""}`));
      if (message.error !== undefined) failure = mask(typeof message.error === "string" ? message.error : JSON.stringify(message.error));
    });
  } catch (error) {
    if (options.signal.aborted) throw new StepError("pull canceled");
    throw new StepError(mask(`could not pull image ${image}: ${describeError(error)}`));
  }
  if (options.signal.aborted) throw new StepError("pull canceled");
  if (failure) throw new StepError(`could not pull image ${image}: ${String(failure).trim()}`);
  if (!(await imageExists(docker, image))) throw new StepError(`could not pull image ${image}: the pull ended without the image`);
  return { image, result: { message: `pulled ${image}` } };
}

/** Removes a service's built images beyond the newest `keep`, and never `live` (rollback without a rebuild keeps working). */
export async function pruneImages(options: {
  docker: Docker;
  repository: string;
  live: string | undefined;
  keep: number;
  onError: (image: string, error: unknown) => void;
}): Promise<void> {
  const { docker, repository } = options;
  const images = await docker.listImages({ filters: { reference: [repository] } }).catch(() => []);
  const tags = images.sort((a, b) => b.Created - a.Created).flatMap((image) => (image.RepoTags ?? []).filter((tag) => tag.startsWith(`${repository}:`)));
  for (const tag of tags.filter((tag) => tag !== options.live).slice(options.keep)) {
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch((error: unknown) => options.onError(tag, error));
  }
}

/** The repository part of an image reference (`localhost/slipway/web-1234abcd:tag` → `localhost/slipway/web-1234abcd`). */
export function repositoryOf(image: string): string {
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  return colon > slash ? image.slice(0, colon) : image;
}
