import type { V1ObjectMeta } from "@kubernetes/client-node";
import { kubernetesNamespace, kubernetesObjectName } from "../../protocol/kubernetes-names";

/** The environment a service belongs to, from the deployment's snapshot: its namespace and the labels on everything in it. */
export type EnvironmentScope = {
  organizationId: string;
  project: { id: string; name: string };
  environment: { id: string; name: string };
};

/** The release an object belongs to: on labels and annotations, so that the cluster, not the engine's memory, says what runs (issue 18, item 6). */
export type ReleaseMeta = { releaseId: string; deploymentId: string; commit?: string };

export const MANAGED_BY = { "app.kubernetes.io/managed-by": "slipway" } as const;
export const LABEL = {
  organization: "slipway.dev/organization-id",
  project: "slipway.dev/project-id",
  environment: "slipway.dev/environment-id",
  service: "slipway.dev/service-id",
  serviceKind: "slipway.dev/service-kind",
  release: "slipway.dev/release-id",
  /** What part of a service an object is, where it has several of a kind: "variables" (its Secrets, one per release). */
  part: "slipway.dev/part",
  /** The lifecycle event a Job ran on, or "build" for a build Job. */
  run: "slipway.dev/run",
} as const;
export const ANNOTATION = {
  deployment: "slipway.dev/deployment-id",
  release: "slipway.dev/release-id",
  commit: "slipway.dev/commit",
  project: "slipway.dev/project",
  environment: "slipway.dev/environment",
  service: "slipway.dev/service",
} as const;

/** The field manager of every server-side apply: a user's fields under other managers are kept. */
export const FIELD_MANAGER = "slipway";

export function namespaceOf(scope: EnvironmentScope): string {
  return kubernetesNamespace(scope.project.name, scope.environment.name, scope.environment.id);
}

export function scopeLabels(scope: EnvironmentScope): Record<string, string> {
  return { ...MANAGED_BY, [LABEL.organization]: scope.organizationId, [LABEL.project]: scope.project.id, [LABEL.environment]: scope.environment.id };
}

/** The labels that select a service's pods: fixed for its life (a Deployment's selector cannot change). */
export function selectorLabels(service: { id: string }): Record<string, string> {
  return { [LABEL.service]: service.id };
}

export type ServiceRef = { id: string; name: string; kind: string };

/** The metadata of an object of `service` in its environment's namespace. */
export function serviceMeta(
  scope: EnvironmentScope,
  service: ServiceRef,
  release: ReleaseMeta | null,
  name = kubernetesObjectName(service.name),
): V1ObjectMeta {
  return {
    name,
    namespace: namespaceOf(scope),
    labels: {
      ...scopeLabels(scope),
      ...selectorLabels(service),
      [LABEL.serviceKind]: service.kind,
      "app.kubernetes.io/name": kubernetesObjectName(service.name),
      ...(release ? { [LABEL.release]: release.releaseId } : {}),
    },
    annotations: {
      [ANNOTATION.project]: scope.project.name,
      [ANNOTATION.environment]: scope.environment.name,
      [ANNOTATION.service]: service.name,
      ...(release ? releaseAnnotations(release) : {}),
    },
  };
}

export function releaseAnnotations(release: ReleaseMeta): Record<string, string> {
  return {
    [ANNOTATION.release]: release.releaseId,
    [ANNOTATION.deployment]: release.deploymentId,
    ...(release.commit ? { [ANNOTATION.commit]: release.commit } : {}),
  };
}
