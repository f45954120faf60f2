import path from "node:path";
import type { StepResult } from "../runtime";
import { type NodeToolchainOptions, NodeToolchains } from "../toolchains/node";
import { PackageManagerToolchains } from "../toolchains/package-managers";
import { ToolchainStore } from "../toolchains/toolchain-store";
import { buildGitImage, findDockerfile } from "./images";
import { buildPlanImage, type PlanImageBuild, type PlanImageSettings } from "./plan-image";

/** Where image builds get their toolchains from, and how plan builds are made (SLIPWAY_DOCKER_BUILD_IMAGE, SLIPWAY_DOCKER_BUILD_NETWORK). */
export type ImageBuildOptions = {
  toolchains: NodeToolchainOptions & { pip?: Record<string, string> };
  buildImage?: string;
  buildNetwork?: string;
};

/**
 * What an engine needs to build images of git services through a Docker API: the toolchain store
 * under its home (the one the local runtime uses too: one download per version, whichever
 * runtime asks) and the settings of plan builds.
 */
export function imageBuildTools(home: string, options: ImageBuildOptions): { store: ToolchainStore; plans: PlanImageSettings } {
  const store = new ToolchainStore(path.join(home, "toolchains"));
  return {
    store,
    plans: {
      node: new NodeToolchains({ ...options.toolchains, store }),
      packageManagers: new PackageManagerToolchains({ registry: options.toolchains.registry, store }),
      registry: options.toolchains.registry,
      pip: options.toolchains.pip ?? {},
      ...(options.buildImage ? { baseImage: options.buildImage } : {}),
      ...(options.buildNetwork ? { network: options.buildNetwork } : {}),
    },
  };
}

/**
 * Builds the image of a git service (an APPLICATION or a JOB) through a Docker API, as the
 * `docker` runtime does and the `kubernetes` runtime on its engine's host: from the repository's
 * Dockerfile, or, without one, from the build plan the local runtime would run (issue 14, item
 * 6). An image built from the same inputs is reused, and the builder's layer cache (and, on
 * Podman, the install's download cache) is kept between builds.
 */
export async function buildServiceImage(options: PlanImageBuild): Promise<{ image: string; result: StepResult }> {
  const dockerfile = await findDockerfile(options.service, options.appDir);
  return dockerfile ? buildGitImage({ ...options, dockerfile }) : buildPlanImage(options);
}
