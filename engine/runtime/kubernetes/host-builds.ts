import type Docker from "dockerode";
import { type GitServiceSpec, registryHostOf, type ServiceSpec } from "../../protocol";
import { connectDocker } from "../docker/docker-host";
import { imageRepository, pruneImages } from "../docker/images";
import type { PlanImageSettings } from "../docker/plan-image";
import { pushImage } from "../docker/push";
import { buildServiceImage, type ImageBuildOptions, imageBuildTools } from "../docker/service-image";
import { type StepContext, StepError } from "../runtime";
import type { ToolchainStore } from "../toolchains/toolchain-store";
import { registryRepository } from "./builds";
import type { KubeApi } from "./kube-api";
import type { EnvironmentScope } from "./labels";
import { registryCredentials } from "./registry-credentials";
import type { KubernetesSettings } from "./settings";

/** Images of a service kept on the engine's host after a push: the next builds of the same inputs reuse them. */
const KEEP_IMAGES = 3;

/**
 * Builds on the engine's host (issue 18, item 4), for a cluster whose setting says so
 * (engineTask.kubernetesBuild): the image is built through the Docker API there with the `docker`
 * runtime's own build (service-image.ts: the Dockerfile, or the build plan; its layer cache and
 * image reuse), pushed to the cluster's registry with the credentials the cluster holds for it,
 * and the Deployment then names it by the digest the registry stored.
 */
export class EngineHostBuilds {
  private readonly clients = new Map<string, Promise<Docker>>();
  private tools: Promise<{ store: ToolchainStore; plans: PlanImageSettings }> | null = null;

  constructor(private readonly options: { home: string; api: KubeApi; settings: KubernetesSettings; images: ImageBuildOptions }) {}

  /** Builds and pushes; returns the image as the cluster pulls it: `<repository>@sha256:…`. */
  async build(input: {
    ctx: StepContext<ServiceSpec>;
    service: GitServiceSpec;
    dockerHost: string;
    scope: EnvironmentScope;
    commit: string;
    releaseDir: string;
    appDir: string;
  }): Promise<string> {
    const { ctx, service } = input;
    const repository = registryRepository(this.options.settings, input.scope, service);
    // Read before the build: a missing or unreadable Secret fails the step before minutes of building.
    const credentials = await registryCredentials(this.options.api, this.options.settings, registryHostOf(repository));
    const docker = await this.client(input.dockerHost);
    ctx.output("system", `Building on the engine's host through the Docker API at ${input.dockerHost}`);
    const { image } = await buildServiceImage({
      docker,
      service,
      releaseDir: input.releaseDir,
      appDir: input.appDir,
      commit: input.commit,
      noCache: ctx.noCache ?? false,
      settings: (await this.buildTools()).plans,
      signal: ctx.signal,
      output: ctx.output,
    });
    const tag = image.slice(image.lastIndexOf(":") + 1);
    const { reference } = await pushImage({ docker, image, repository, tag, credentials, signal: ctx.signal, output: ctx.output });
    await pruneImages({
      docker,
      repository: imageRepository(service),
      live: image,
      keep: KEEP_IMAGES,
      onError: (old, error) => ctx.output("system", `Could not remove the old image ${old}: ${(error as Error).message}`),
    });
    return reference;
  }

  /** One client per Docker API, connected (GET /version) once: an unreachable one fails the build step, and is tried again next time. */
  private client(url: string): Promise<Docker> {
    let client = this.clients.get(url);
    if (!client) {
      client = connectDocker(url).then(
        (connected) => connected.docker,
        (error: unknown) => {
          this.clients.delete(url);
          throw new StepError(`${(error as Error).message}: the cluster's setting builds images on the engine's host there`);
        },
      );
      this.clients.set(url, client);
    }
    return client;
  }

  /** The toolchain store (the engine home's, as the other runtimes use it), swept of cut-short installs before its first use. */
  private buildTools(): Promise<{ store: ToolchainStore; plans: PlanImageSettings }> {
    this.tools ??= (async () => {
      const tools = imageBuildTools(this.options.home, this.options.images);
      await tools.store.sweep();
      return tools;
    })();
    return this.tools;
  }
}
