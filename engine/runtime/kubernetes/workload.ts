import type { V1Container, V1Deployment, V1EnvVar, V1Ingress, V1Probe, V1ResourceRequirements, V1Service } from "@kubernetes/client-node";
import type { ApplicationServiceSpec, ContainerServiceSpec, ResourceLimits } from "../../protocol";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import { type EnvironmentScope, type ReleaseMeta, releaseAnnotations, selectorLabels, serviceMeta, LABEL } from "./labels";
import { pullSecretName, variablesSecretName } from "./secrets";
import { podSecurity, POD_DEFAULTS, readOnlyRoot } from "./security";
import type { KubernetesSettings } from "./settings";

/** What serves traffic: an APPLICATION (its image built from git) or a CONTAINER (an image that exists). */
export type ServingSpec = ApplicationServiceSpec | ContainerServiceSpec;

/** The port a container listens on when the service names none: the engine does not pull images to read their exposed ports. */
export const DEFAULT_PORT = 8080;

/** The Gateway API's HTTPRoute (gateway.networking.k8s.io/v1), the fields the runtime sets. */
export type HttpRoute = {
  apiVersion: "gateway.networking.k8s.io/v1";
  kind: "HTTPRoute";
  metadata: V1Deployment["metadata"];
  spec: {
    parentRefs: { name: string; namespace: string }[];
    hostnames: string[];
    rules: { matches: { path: { type: "PathPrefix"; value: string } }[]; backendRefs: { name: string; port: number }[] }[];
  };
};

export function portOf(service: ServingSpec): number {
  return service.config.port ?? DEFAULT_PORT;
}

/**
 * How long a rollout may go without progress before Kubernetes marks it failed
 * (`progressDeadlineSeconds`) and the runtime undoes it: the health check's time, plus time to
 * pull the image and schedule the pod.
 */
export function progressDeadlineSeconds(service: ServingSpec): number {
  return service.config.healthCheckTimeoutSeconds + 120;
}

/**
 * A Deployment of the release: rolling update with no unavailable pod (a new pod must be ready
 * before an old one goes: zero downtime), probes from the service's health check, its resources,
 * variables from its Secret, the restrictive security context.
 */
export function deploymentManifest(
  scope: EnvironmentScope,
  service: ServingSpec,
  release: ReleaseMeta,
  image: string,
  databaseEnv: V1EnvVar[] = [],
): V1Deployment {
  const meta = serviceMeta(scope, service, release);
  const security = podSecurity(service.kind === "CONTAINER" ? service.config.user : undefined);
  const container: V1Container = {
    name: "app",
    image,
    imagePullPolicy: "IfNotPresent",
    ...commandOf(service),
    ports: [{ name: "http", containerPort: portOf(service), protocol: "TCP" }],
    env: [
      { name: "PORT", value: String(portOf(service)) },
      { name: "SLIPWAY_RELEASE_ID", value: release.releaseId },
      ...(release.commit ? [{ name: "SLIPWAY_GIT_COMMIT", value: release.commit }] : []),
      ...databaseEnv,
    ],
    envFrom: [{ secretRef: { name: variablesSecretName(service.name, release.releaseId) } }],
    resources: resourcesOf(service.config.resources),
    ...probesOf(service),
    securityContext: security.container,
  };
  const podSpec: NonNullable<V1Deployment["spec"]>["template"]["spec"] = {
    ...POD_DEFAULTS,
    securityContext: security.pod,
    containers: [container],
    ...(service.kind === "CONTAINER" && service.config.image.credentials ? { imagePullSecrets: [{ name: pullSecretName(service.name) }] } : {}),
  };
  if (service.kind === "CONTAINER" && service.config.readOnlyRootFilesystem) readOnlyRoot(container, podSpec!);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta,
    spec: {
      replicas: service.kind === "APPLICATION" ? service.config.instances : 1,
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: progressDeadlineSeconds(service),
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      selector: { matchLabels: selectorLabels(service) },
      template: {
        metadata: { labels: { ...selectorLabels(service), [LABEL.release]: release.releaseId }, annotations: releaseAnnotations(release) },
        spec: podSpec,
      },
    },
  };
}

/** The ClusterIP Service in front of the pods, on port 80. */
export function serviceManifest(scope: EnvironmentScope, service: ServingSpec): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: serviceMeta(scope, service, null),
    spec: { type: "ClusterIP", selector: selectorLabels(service), ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }] },
  };
}

/** The route from the service's domains to its Service: an Ingress or an HTTPRoute as the cluster chose; none without domains. */
export function routingManifest(scope: EnvironmentScope, service: ServingSpec, settings: KubernetesSettings): V1Ingress | HttpRoute | null {
  if (service.domains.length === 0) return null;
  const metadata = serviceMeta(scope, service, null);
  const backend = kubernetesObjectName(service.name);
  if (settings.routing.kind === "gateway")
    return {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata,
      spec: {
        parentRefs: [{ name: settings.routing.name, namespace: settings.routing.namespace }],
        hostnames: service.domains,
        rules: [{ matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: [{ name: backend, port: 80 }] }],
      },
    };
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata,
    spec: {
      ...(settings.routing.className ? { ingressClassName: settings.routing.className } : {}),
      rules: service.domains.map((host) => ({
        host,
        http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: backend, port: { name: "http" } } } }] },
      })),
    },
  };
}

function commandOf(service: ServingSpec): Pick<V1Container, "command" | "args"> {
  if (service.kind === "CONTAINER") return service.config.command ? { args: service.config.command } : {};
  // An APPLICATION's start command, as on the other runtimes a shell command, replaces its image's.
  return service.config.startCommand ? { command: ["/bin/sh", "-c", service.config.startCommand] } : {};
}

/**
 * Probes from the health check: an HTTP GET of its path (a TCP connect without one). The startup
 * probe gives the app the health check's timeout to come up; then readiness takes a pod out of
 * the Service while it fails, liveness restarts it after a minute of failures.
 */
function probesOf(service: ServingSpec): Pick<V1Container, "startupProbe" | "readinessProbe" | "livenessProbe"> {
  const path = service.config.healthCheckPath;
  const check: V1Probe = path ? { httpGet: { path, port: "http" } } : { tcpSocket: { port: "http" } };
  return {
    startupProbe: { ...check, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: Math.max(1, Math.ceil(service.config.healthCheckTimeoutSeconds / 2)) },
    readinessProbe: { ...check, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 },
    livenessProbe: { ...check, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 },
  };
}

/** Limits as given, requested in full (the scheduler places the pod where they fit); small requests without limits otherwise. */
export function resourcesOf(limits: ResourceLimits | undefined): V1ResourceRequirements {
  const given: Record<string, string> = {
    ...(limits?.memoryMb ? { memory: `${limits.memoryMb}Mi` } : {}),
    ...(limits?.cpus ? { cpu: `${Math.max(1, Math.round(limits.cpus * 1000))}m` } : {}),
  };
  return { requests: { cpu: "50m", memory: "64Mi", ...given }, ...(Object.keys(given).length > 0 ? { limits: given } : {}) };
}
