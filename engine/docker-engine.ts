import type Docker from "dockerode";
import { createEngine, type Engine, type EngineOptions } from "./orchestrator";
import { createDockerRuntime, type DockerRuntimeOptions } from "./runtime/docker/docker-runtime";

export type DockerEngineOptions = Omit<EngineOptions, "runtime"> & {
  /** A client of the cluster's Docker Engine API (engine/runtime/docker/docker-host.ts connects one). */
  docker: Docker;
  /** Where toolchains come from (the npm registry) and the Node of apps that name none: for apps built without a Dockerfile. */
  toolchains: DockerRuntimeOptions["toolchains"];
  /** The image plan builds start from and the network of their steps (SLIPWAY_DOCKER_BUILD_IMAGE, SLIPWAY_DOCKER_BUILD_NETWORK). */
  builds?: Pick<DockerRuntimeOptions, "buildImage" | "buildNetwork">;
  /** Runtime tunables (drain and stop timeouts, supervision interval, the minute of sleep when idle); tests shorten them. */
  tuning?: Pick<DockerRuntimeOptions, "drainTimeoutMs" | "stopGraceMs" | "supervisionMs" | "keepImages" | "sleepMinuteMs" | "logKeepBytes">;
};

/**
 * The engine of a `docker` cluster: the same orchestration as `local` (engine/orchestrator.ts),
 * releases are containers of the Docker Engine API (Docker or Podman), traffic goes through the
 * same router process.
 */
export function createDockerEngine(options: DockerEngineOptions): Engine {
  return createEngine({
    ...options,
    runtime: ({ logger, serviceLog, events }) =>
      createDockerRuntime({
        home: options.home,
        docker: options.docker,
        logger,
        serviceLog,
        events,
        toolchains: options.toolchains,
        ...options.builds,
        ...options.tuning,
      }),
  });
}
