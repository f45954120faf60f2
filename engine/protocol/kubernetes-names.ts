import { createHash } from "node:crypto";

/**
 * Names of the Kubernetes objects a `kubernetes` cluster's engine creates (issue 18), here
 * because the control plane needs one of them too: the built-in database variables name the
 * database's Service as its host.
 */

/** A Service's name is a DNS-1035 label (a letter first); a service's name is a DNS-1123 one (a digit may come first). */
export function kubernetesObjectName(serviceName: string): string {
  return /^[a-z]/.test(serviceName) ? serviceName : `s-${serviceName}`;
}

/**
 * The namespace of an environment: `<project>-<environment>` when that is a DNS label of at most
 * 63 characters, else its first 54 characters and a hash of the environment's id, so two long
 * names never share a namespace.
 */
export function kubernetesNamespace(projectName: string, environmentName: string, environmentId: string): string {
  const readable = `${projectName}-${environmentName}`;
  if (readable.length <= 63) return readable;
  const hash = createHash("sha256").update(environmentId).digest("hex").slice(0, 8);
  return `${readable.slice(0, 54).replace(/-+$/, "")}-${hash}`;
}
