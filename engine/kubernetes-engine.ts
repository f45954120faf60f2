import { createEngine, type Engine, type EngineOptions } from "./orchestrator";
import type { ImageBuildOptions } from "./runtime/docker/service-image";
import type { KubeApi } from "./runtime/kubernetes/kube-api";
import { KubernetesRuntime, type KubernetesRuntimeOptions } from "./runtime/kubernetes/kubernetes-runtime";
import type { KubernetesSettings } from "./runtime/kubernetes/settings";

export type KubernetesEngineOptions = Omit<EngineOptions, "runtime" | "router"> & {
  /** The cluster's API (engine/runtime/kubernetes/client-node-api.ts), or any implementation of the seam. */
  api: KubeApi;
  settings: KubernetesSettings;
  /** Where toolchains come from, for images built on the engine's host (a cluster's setting): as the `docker` engine's. */
  toolchains: ImageBuildOptions["toolchains"];
  /** The image plan builds start from and the network of their steps (SLIPWAY_DOCKER_BUILD_IMAGE, SLIPWAY_DOCKER_BUILD_NETWORK). */
  builds?: Pick<ImageBuildOptions, "buildImage" | "buildNetwork">;
  /** Runtime tunables; tests shorten them. */
  tuning?: Pick<KubernetesRuntimeOptions, "retry" | "statefulSetTimeoutMs">;
};

/**
 * The engine of a `kubernetes` cluster (issue 18): the same orchestration as every cluster
 * (engine/orchestrator.ts); releases are Kubernetes objects, and the cluster's Ingress controller
 * or Gateway routes, so the engine runs no router of its own.
 */
export function createKubernetesEngine(options: KubernetesEngineOptions): Engine {
  return createEngine({
    ...options,
    router: false,
    runtime: ({ logger, serviceLog }) =>
      new KubernetesRuntime({
        api: options.api,
        settings: options.settings,
        home: options.home,
        logger,
        serviceLog,
        images: { toolchains: options.toolchains, ...options.builds },
        ...options.tuning,
      }),
  });
}
