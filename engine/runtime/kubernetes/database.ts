import type { V1Container, V1Secret, V1Service, V1StatefulSet } from "@kubernetes/client-node";
import type { DatabaseServiceSpec } from "../../protocol";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import { CNPG_LABEL, CNPG_PORT } from "./cnpg";
import { type EnvironmentScope, LABEL, type ReleaseMeta, releaseAnnotations, selectorLabels, serviceMeta } from "./labels";
import { base64 } from "./secrets";
import { POD_DEFAULTS } from "./security";
import type { KubernetesSettings } from "./settings";
import { resourcesOf } from "./workload";

/** The official images' servers, and the unprivileged user they run as (uid 999 in both). */
const ENGINES = {
  postgresql: { image: "postgres:17", port: 5432, dataDir: "/var/lib/postgresql/data" },
  redis: { image: "redis:7", port: 6379, dataDir: "/data" },
} as const;
export const DATABASE_UID = 999;

export function credentialsSecretName(serviceName: string): string {
  return `${kubernetesObjectName(serviceName)}-credentials`;
}

/** The database's credentials, which the server reads from its environment (never from the manifest). */
export function databaseSecret(scope: EnvironmentScope, service: DatabaseServiceSpec, release: ReleaseMeta): V1Secret {
  const { connection } = service.config;
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: serviceMeta(scope, service, release, credentialsSecretName(service.name)),
    type: "Opaque",
    data: { username: base64(connection.user), password: base64(connection.password), database: base64(connection.database) },
  };
}

/**
 * A DATABASE as a StatefulSet of one server with its PersistentVolumeClaim (the cluster's storage
 * class, or the one configured), run as the image's unprivileged user: the volume is made
 * writable for it by `fsGroup` rather than by a root entrypoint.
 */
export function statefulSetManifest(scope: EnvironmentScope, service: DatabaseServiceSpec, release: ReleaseMeta, settings: KubernetesSettings): V1StatefulSet {
  const engine = ENGINES[service.config.engine];
  const secret = credentialsSecretName(service.name);
  const fromSecret = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: secret, key } } });
  const container: V1Container =
    service.config.engine === "postgresql"
      ? {
          name: "postgresql",
          image: engine.image,
          env: [
            fromSecret("POSTGRES_USER", "username"),
            fromSecret("POSTGRES_PASSWORD", "password"),
            fromSecret("POSTGRES_DB", "database"),
            { name: "PGDATA", value: `${engine.dataDir}/pgdata` },
          ],
          readinessProbe: { exec: { command: ["sh", "-c", 'pg_isready -U "$POSTGRES_USER" -d "$POSTGRES_DB"'] }, periodSeconds: 5, failureThreshold: 3 },
        }
      : {
          name: "redis",
          image: engine.image,
          env: [fromSecret("REDIS_PASSWORD", "password")],
          command: ["sh", "-c", 'exec redis-server --appendonly yes --dir /data --requirepass "$REDIS_PASSWORD"'],
          readinessProbe: { tcpSocket: { port: "db" }, periodSeconds: 5, failureThreshold: 3 },
        };
  const name = kubernetesObjectName(service.name);
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: serviceMeta(scope, service, release),
    spec: {
      serviceName: name,
      replicas: 1,
      selector: { matchLabels: selectorLabels(service) },
      template: {
        metadata: { labels: { ...selectorLabels(service), [LABEL.release]: release.releaseId }, annotations: releaseAnnotations(release) },
        spec: {
          ...POD_DEFAULTS,
          securityContext: {
            runAsUser: DATABASE_UID,
            runAsGroup: DATABASE_UID,
            fsGroup: DATABASE_UID,
            runAsNonRoot: true,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              ...container,
              ports: [{ name: "db", containerPort: engine.port, protocol: "TCP" }],
              livenessProbe: { tcpSocket: { port: "db" }, periodSeconds: 10, failureThreshold: 6 },
              resources: resourcesOf(undefined),
              securityContext: { privileged: false, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
              volumeMounts: [{ name: "data", mountPath: engine.dataDir }],
            },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: "data", labels: selectorLabels(service) },
          spec: {
            accessModes: ["ReadWriteOnce"],
            ...(settings.storageClass ? { storageClassName: settings.storageClass } : {}),
            resources: { requests: { storage: settings.databaseStorage } },
          },
        },
      ],
      // Volumes stay when the StatefulSet goes (a redeploy, a stop): only deleting the service removes them.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
    },
  };
}

/**
 * The database's Service: its name is the host the environment's services connect to, on the
 * service's port. In front of an operator's Cluster it selects the primary instance, on the port
 * the operator's instances listen on (the host in the variables the control plane computed keeps
 * working beside the operator's `<name>-rw`).
 */
export function databaseServiceManifest(scope: EnvironmentScope, service: DatabaseServiceSpec, operator = false): V1Service {
  const name = kubernetesObjectName(service.name);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: serviceMeta(scope, service, null),
    spec: {
      type: "ClusterIP",
      selector: operator ? { [CNPG_LABEL.cluster]: name, [CNPG_LABEL.instanceRole]: "primary" } : selectorLabels(service),
      ports: [{ name: "db", port: service.config.connection.port, targetPort: operator ? CNPG_PORT : "db", protocol: "TCP" }],
    },
  };
}
