import type { KubernetesObject, V1Namespace } from "@kubernetes/client-node";
import type { ServiceSpec } from "../../protocol";
import { cnpgClusterManifest, operatorDatabaseEnv } from "./cnpg";
import { databaseSecret, databaseServiceManifest, statefulSetManifest } from "./database";
import { cronJobManifest } from "./jobs";
import { type EnvironmentScope, namespaceOf, type ReleaseMeta, scopeLabels, ANNOTATION } from "./labels";
import { pullSecret, variablesSecret } from "./secrets";
import type { KubernetesSettings } from "./settings";
import { deploymentManifest, routingManifest, serviceManifest } from "./workload";

/**
 * The environment's namespace. Pod Security admission enforces the "baseline" profile, which
 * allows the few capabilities a root-started image keeps, and warns where a pod is not
 * "restricted" (https://kubernetes.io/docs/concepts/security/pod-security-admission/).
 */
export function namespaceManifest(scope: EnvironmentScope): V1Namespace {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: namespaceOf(scope),
      labels: {
        ...scopeLabels(scope),
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
      },
      annotations: { [ANNOTATION.project]: scope.project.name, [ANNOTATION.environment]: scope.environment.name },
    },
  };
}

/**
 * What the runtime found the cluster able to do, where manifests depend on it: whether it serves
 * CloudNativePG's Cluster (a PostgreSQL DATABASE is then one), and which of the environment's
 * databases the operator runs (their connection variables come from its Secrets).
 */
export type ClusterFeatures = {
  cloudNativePg: boolean;
  operatorDatabases: string[];
  /** The operator is installed, and the database stays the StatefulSet it already runs as. */
  keptStatefulSet?: boolean;
};
export const NO_FEATURES: ClusterFeatures = { cloudNativePg: false, operatorDatabases: [] };

/**
 * Everything a release of `service` consists of, in the order to apply it: what a workload reads
 * (Secrets) before the workload, the workload before what routes to it. `image` is the image the
 * release runs (built, or the CONTAINER's); DATABASE services have their own.
 */
export function releaseManifests(
  scope: EnvironmentScope,
  service: ServiceSpec,
  release: ReleaseMeta,
  settings: KubernetesSettings,
  image: string,
  features: ClusterFeatures = NO_FEATURES,
): KubernetesObject[] {
  const databaseEnv = operatorDatabaseEnv(features.operatorDatabases);
  switch (service.kind) {
    case "APPLICATION":
    case "CONTAINER": {
      const credentials = service.kind === "CONTAINER" ? service.config.image.credentials : undefined;
      const routing = routingManifest(scope, service, settings);
      return [
        variablesSecret(scope, service, release),
        ...(credentials ? [pullSecret(scope, service, image, credentials)] : []),
        deploymentManifest(scope, service, release, image, databaseEnv),
        serviceManifest(scope, service),
        ...(routing ? [routing] : []),
      ];
    }
    case "DATABASE":
      if (features.cloudNativePg && service.config.engine === "postgresql")
        return [databaseServiceManifest(scope, service, true), cnpgClusterManifest(scope, service, release, settings)];
      return [databaseSecret(scope, service, release), databaseServiceManifest(scope, service), statefulSetManifest(scope, service, release, settings)];
    case "JOB":
      // A lifecycle job's Job is made when it runs (runtime.runJob): a release only keeps its variables ready.
      return [
        variablesSecret(scope, service, release),
        ...(service.config.trigger.type === "cron" ? [cronJobManifest(scope, service, release, image, databaseEnv)] : []),
      ];
  }
}
