import type { V1Secret } from "@kubernetes/client-node";
import { registryHostOf, type ResolvedVariable } from "../../protocol";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import { type EnvironmentScope, LABEL, type ReleaseMeta, type ServiceRef, serviceMeta } from "./labels";

/**
 * A service's variables, plain and secret alike, as a Secret its pods read with `envFrom`: no
 * value is ever written in a workload's manifest (issue 18). One per release, so that pods of
 * the previous revision, brought back by an undo, read the variables they were deployed with.
 */
export function variablesSecret(scope: EnvironmentScope, service: ServiceRef & { variables: ResolvedVariable[] }, release: ReleaseMeta): V1Secret {
  const meta = serviceMeta(scope, service, release, variablesSecretName(service.name, release.releaseId));
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { ...meta, labels: { ...meta.labels, [LABEL.part]: "variables" } },
    type: "Opaque",
    data: Object.fromEntries(service.variables.map((variable) => [variable.key, base64(variable.value)])),
  };
}

/** `<service>-env-<release's deployment>`: at most 53 characters. */
export function variablesSecretName(serviceName: string, releaseId: string): string {
  return `${kubernetesObjectName(serviceName)}-env-${releaseId.slice(-8)}`;
}

/** The credentials a CONTAINER's image is pulled with, as a `kubernetes.io/dockerconfigjson` Secret named in the pod's imagePullSecrets. */
export function pullSecret(scope: EnvironmentScope, service: ServiceRef, image: string, credentials: { username: string; password: string }): V1Secret {
  const registry = registryOf(image);
  const auth = base64(`${credentials.username}:${credentials.password}`);
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: serviceMeta(scope, service, null, pullSecretName(service.name)),
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": base64(JSON.stringify({ auths: { [registry]: { username: credentials.username, password: credentials.password, auth } } })) },
  };
}

export function pullSecretName(serviceName: string): string {
  return `${kubernetesObjectName(serviceName)}-registry`;
}

/** The registry of an image name as a pull secret's `.dockerconfigjson` names it: Docker Hub by its index URL. */
export function registryOf(image: string): string {
  const host = registryHostOf(image);
  return host === "docker.io" ? "https://index.docker.io/v1/" : host;
}

export function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}
