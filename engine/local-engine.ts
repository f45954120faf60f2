import { createEngine, type Engine, type EngineOptions } from "./orchestrator";
import { createLocalRuntime, type LocalRuntimeOptions } from "./runtime/local/local-runtime";

export type LocalEngineOptions = Omit<EngineOptions, "runtime"> & {
  /** Where toolchains come from (the npm registry) and the Node of apps that name none. */
  toolchains: LocalRuntimeOptions["toolchains"];
  /** Runtime tunables (drain and stop timeouts, crash backoff, the build cache's limit); tests shorten them. */
  tuning?: Pick<
    LocalRuntimeOptions,
    | "drainTimeoutMs"
    | "stopGraceMs"
    | "backoffBaseMs"
    | "backoffMaxMs"
    | "sandbox"
    | "loopbackFence"
    | "buildCacheMb"
    | "sleepMinuteMs"
    | "runtimeLogKeepMb"
    | "releasesKept"
    | "diskPassMs"
  >;
};

/** The engine of a `local` cluster: the orchestration of engine/orchestrator.ts, releases are processes on this host. */
export function createLocalEngine(options: LocalEngineOptions): Engine {
  return createEngine({
    ...options,
    runtime: ({ logger, serviceLog, events }) =>
      createLocalRuntime({ home: options.home, logger, ...options.tuning, toolchains: options.toolchains, serviceLog, events }),
  });
}
