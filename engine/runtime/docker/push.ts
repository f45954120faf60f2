import type { Readable } from "node:stream";
import type Docker from "dockerode";
import { StepError, type StepOutput } from "../runtime";
import { secretMasker } from "../secret-mask";
import { describeError } from "./docker-host";
import { jsonLines } from "./streams";
import { registryHostOf } from "../../protocol";

/** Docker's and Podman's last status line of a push (distribution's `<tag>: digest: <digest> size: <bytes>`). */
const PUSHED_LINE = /: digest: (sha256:[0-9a-f]{64}) size: \d+/;

export type RegistryCredentials = { username: string; password: string };

/**
 * Pushes a local image to `repository:tag` through the Engine API (POST /images/{name}/push)
 * and returns the digest of the manifest the registry stored: the push's last status line says it
 * (`<tag>: digest: sha256:… size: N`, from Docker and Podman alike), else its `aux` message, else
 * the image's RepoDigests after the push. The status line comes first: Podman 4.3's `aux` carries
 * the digest of its local manifest, not of the one it converted and pushed (the registry answers
 * 404 for it; host-builds.test.ts asks the registry). The
 * credentials go in the X-Registry-Auth header only; every line and error the push reports is
 * masked with the password. The registry's tag is removed from the engine's host after the push
 * (the local image stays: the next build of the same inputs reuses it).
 */
export async function pushImage(options: {
  docker: Docker;
  image: string;
  repository: string;
  tag: string;
  credentials: RegistryCredentials | null;
  signal: AbortSignal;
  output: StepOutput;
}): Promise<{ reference: string; digest: string }> {
  const { docker, repository, tag, credentials, output } = options;
  const target = `${repository}:${tag}`;
  const mask = secretMasker(credentials ? [{ key: "registry password", value: credentials.password, secret: true }] : []);
  try {
    await docker.getImage(options.image).tag({ repo: repository, tag });
  } catch (error) {
    throw new StepError(`could not tag ${options.image} as ${target}: ${describeError(error)}`);
  }
  const registry = registryHostOf(repository);
  output("system", `Pushing ${target}${credentials ? ` as ${credentials.username}` : " without credentials"}`);
  let failure: string | null = null;
  let pushed: string | null = null;
  let auxDigest: string | null = null;
  let digest: string | null = null;
  try {
    try {
      const stream = (await docker.getImage(repository).push({
        tag,
        abortSignal: options.signal,
        ...(credentials ? { authconfig: { username: credentials.username, password: credentials.password, serveraddress: registry } } : {}),
      })) as unknown as Readable;
      options.signal.addEventListener("abort", () => stream.destroy(), { once: true });
      await jsonLines(stream, (message) => {
        if (typeof message.status === "string") {
          output("stdout", mask(`${message.status}${typeof message.progress === "string" ? ` ${message.progress}` : ""}`));
          pushed ??= PUSHED_LINE.exec(message.status)?.[1] ?? null;
        }
        const aux = message.aux as { Digest?: unknown } | undefined;
        if (typeof aux?.Digest === "string") auxDigest = aux.Digest;
        if (message.error !== undefined) failure = mask(typeof message.error === "string" ? message.error : JSON.stringify(message.error));
      });
    } catch (error) {
      if (options.signal.aborted) throw new StepError("push canceled");
      throw new StepError(mask(`could not push ${target}: ${describeError(error)}`));
    }
    if (options.signal.aborted) throw new StepError("push canceled");
    if (failure) throw new StepError(`could not push ${target}: ${String(failure).trim()}`);
    digest = pushed ?? auxDigest ?? (await repoDigest(docker, target, repository));
    if (!digest) throw new StepError(`the push of ${target} ended without the digest of what the registry stored`);
  } finally {
    // Only the registry's name goes: the image keeps its local tag, and its layers the builder's cache.
    await docker
      .getImage(target)
      .remove({ noprune: true })
      .catch(() => undefined);
  }
  output("system", `Pushed ${repository}@${digest}`);
  return { reference: `${repository}@${digest}`, digest };
}

/** The digest the engine recorded for `repository` once the push ended (RepoDigests: `repository@sha256:…`). */
async function repoDigest(docker: Docker, target: string, repository: string): Promise<string | null> {
  const info = await docker
    .getImage(target)
    .inspect()
    .catch(() => null);
  const entry = info?.RepoDigests?.find((candidate) => candidate.startsWith(`${repository}@`));
  return entry ? entry.slice(repository.length + 1) : null;
}
