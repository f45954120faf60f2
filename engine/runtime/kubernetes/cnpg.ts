import type { KubernetesObject, V1EnvVar, V1ObjectMeta, V1ResourceRequirements } from "@kubernetes/client-node";
import type { DatabaseServiceSpec } from "../../protocol";
import { databaseVariablePrefix } from "../../protocol";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import { type EnvironmentScope, type ReleaseMeta, selectorLabels, serviceMeta } from "./labels";
import type { RolloutState } from "./rollout";
import type { KubernetesSettings } from "./settings";
import { resourcesOf } from "./workload";

/**
 * A PostgreSQL DATABASE run by the CloudNativePG operator (issue 18, item 2), when the cluster
 * serves its `Cluster` kind: the operator makes the instances, their volumes, the `<name>-rw`
 * Service and the `<name>-app` Secret with the owner's credentials, and the environment's
 * services read their connection variables from that Secret. Fields as the operator's API
 * reference (v1.30) names them: https://cloudnative-pg.io/documentation/1.30/cloudnative-pg.v1/
 */
export const CNPG_API_VERSION = "postgresql.cnpg.io/v1";
export const CNPG_KIND = "Cluster";
/** The operator's PostgreSQL image, the same major version as the StatefulSet's `postgres:17`. */
const CNPG_IMAGE = "ghcr.io/cloudnative-pg/postgresql:17";
/** The user the operator's images run as (https://cloudnative-pg.io/documentation/1.30/security/: "postgres", uid 26). */
export const CNPG_UID = 26;
/** The port the operator's instances listen on, whatever the service's own port. */
export const CNPG_PORT = 5432;
/** The operator's labels on its pods (https://cloudnative-pg.io/documentation/1.30/labels_annotations/). */
export const CNPG_LABEL = { cluster: "cnpg.io/cluster", instanceRole: "cnpg.io/instanceRole" } as const;
/** Declarative hibernation (https://cloudnative-pg.io/documentation/1.30/declarative_hibernation/): the instances go, the volumes stay. */
export const CNPG_HIBERNATION = "cnpg.io/hibernation";

export type CnpgCluster = KubernetesObject & {
  metadata: V1ObjectMeta;
  spec: {
    instances: number;
    imageName: string;
    storage: { size: string; storageClass?: string };
    bootstrap: { initdb: { database: string; owner: string } };
    inheritedMetadata: { labels: Record<string, string> };
    resources: V1ResourceRequirements;
  };
  status?: {
    phase?: string;
    phaseReason?: string;
    instances?: number;
    readyInstances?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string; observedGeneration?: number }[];
  };
};

/** `<name>-app`: the Secret the operator writes the database owner's credentials and connection details to. */
export function cnpgAppSecretName(serviceName: string): string {
  return `${kubernetesObjectName(serviceName)}-app`;
}

/**
 * The Cluster of one instance: the service's database owned by its user (`bootstrap.initdb`), a
 * volume of the configured size and storage class. The operator makes the owner's password: the
 * `<name>-app` Secret, not the service's configuration, is where it is read. The service's id
 * label is passed on to the operator's pods and volumes (`inheritedMetadata`), so that logs,
 * metrics and a delete find them as they find every service's.
 */
export function cnpgClusterManifest(scope: EnvironmentScope, service: DatabaseServiceSpec, release: ReleaseMeta, settings: KubernetesSettings): CnpgCluster {
  const { connection } = service.config;
  return {
    apiVersion: CNPG_API_VERSION,
    kind: CNPG_KIND,
    metadata: serviceMeta(scope, service, release),
    spec: {
      instances: 1,
      imageName: CNPG_IMAGE,
      storage: { size: settings.databaseStorage, ...(settings.storageClass ? { storageClass: settings.storageClass } : {}) },
      bootstrap: { initdb: { database: connection.database, owner: connection.user } },
      inheritedMetadata: { labels: selectorLabels(service) },
      resources: resourcesOf(undefined),
    },
  };
}

/**
 * The connection variables of the environment's databases run by the operator, read by the pods
 * from each one's `<name>-app` Secret (keys as the operator writes them: pkg/specs/secrets.go,
 * documented in https://cloudnative-pg.io/documentation/1.30/applications/#secrets). They replace
 * the values the control plane computed (the same names from the variables' Secret): `env` wins
 * over `envFrom`.
 */
export function operatorDatabaseEnv(databaseNames: string[]): V1EnvVar[] {
  const keys = { URL: "uri", HOST: "host", PORT: "port", USER: "username", PASSWORD: "password", DATABASE: "dbname" } as const;
  return databaseNames.flatMap((name) =>
    Object.entries(keys).map(([suffix, key]) => ({
      name: `${databaseVariablePrefix(name)}_${suffix}`,
      valueFrom: { secretKeyRef: { name: cnpgAppSecretName(name), key } },
    })),
  );
}

/** Phases the operator does not leave by itself (api/v1/cluster_types.go, v1.30). */
const STUCK_PHASES = new Set([
  "Cluster is unrecoverable and needs manual intervention",
  "Unable to create required cluster objects",
  "Cluster has incomplete or invalid image catalog",
  "Cluster cannot execute instance online upgrade due to missing architecture binary",
]);
const HEALTHY = "Cluster in healthy state";

/** A Cluster is available once the operator reports it healthy, its Ready condition true for the current spec, with all its instances ready. */
export function cnpgClusterRollout(cluster: CnpgCluster): RolloutState {
  const { metadata, spec, status } = cluster;
  const name = metadata.name ?? "cluster";
  const phase = status?.phase;
  if (phase && STUCK_PHASES.has(phase)) return { state: "failed", message: `${name}: ${phase}${status?.phaseReason ? ` (${status.phaseReason})` : ""}` };
  const ready = status?.conditions?.find((condition) => condition.type === "Ready");
  const current = ready && (ready.observedGeneration === undefined || ready.observedGeneration >= (metadata.generation ?? 1));
  const wanted = spec.instances;
  const readyInstances = status?.readyInstances ?? 0;
  if (phase === HEALTHY && current && ready.status === "True" && readyInstances >= wanted)
    return { state: "available", message: `${readyInstances} of ${wanted} instances ready` };
  return { state: "progressing", message: phase ? `${phase}, ${readyInstances} of ${wanted} instances ready` : "waiting for the operator to see the Cluster" };
}
