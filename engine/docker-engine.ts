import type Docker from "dockerode";
import { createEngine, type Engine, type EngineOptions } from "./orchestrator";
import { createDockerRuntime, type DockerRuntimeOptions } from "./runtime/docker/docker-runtime";

export type DockerEngineOptions = Omit<EngineOptions, "runtime"> & {
  /** A client of the cluster's Docker Engine API (engine/runtime/docker/docker-host.ts connects one). */
  docker: Docker;
  /** Runtime tunables (drain and stop timeouts, supervision interval); tests shorten them. */
  tuning?: Pick<DockerRuntimeOptions, "drainTimeoutMs" | "stopGraceMs" | "supervisionMs" | "keepImages">;
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
      createDockerRuntime({ home: options.home, docker: options.docker, logger, serviceLog, events, ...options.tuning }),
  });
}
