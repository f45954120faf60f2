import type { V1Container, V1PodSecurityContext, V1PodSpec, V1SecurityContext } from "@kubernetes/client-node";
import { isRootUser, ROOT_CAPABILITIES } from "../docker/hardening";
import { StepError } from "../runtime";

/**
 * The restrictive security context of everything the runtime runs (issue 18): the Pod Security
 * Standards' "restricted" profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/)
 * where the image allows it. No privilege escalation, the runtime's default seccomp profile, every
 * capability dropped, no service account token, no service links. An image that starts as root
 * (many official ones, which drop to their own user) keeps the few capabilities it needs for
 * that, the same ones as on the docker runtime.
 */
export function podSecurity(user: string | undefined): { pod: V1PodSecurityContext; container: V1SecurityContext } {
  const ids = numericUser(user);
  const root = user === undefined ? null : isRootUser(user);
  return {
    pod: {
      seccompProfile: { type: "RuntimeDefault" },
      ...(ids ? { runAsUser: ids.uid, ...(ids.gid === undefined ? {} : { runAsGroup: ids.gid }) } : {}),
      ...(root === false ? { runAsNonRoot: true } : {}),
    },
    container: {
      privileged: false,
      allowPrivilegeEscalation: false,
      // Unknown (the image's USER, which the engine does not pull to read) is treated as root, as on docker.
      capabilities: { drop: ["ALL"], ...(root === false ? {} : { add: [...ROOT_CAPABILITIES] }) },
    },
  };
}

/** The pod fields every workload shares. */
export const POD_DEFAULTS: Pick<V1PodSpec, "automountServiceAccountToken" | "enableServiceLinks"> = {
  automountServiceAccountToken: false,
  enableServiceLinks: false,
};

/** A read-only root file system with a fresh /tmp, for images that write nowhere else. */
export function readOnlyRoot(container: V1Container, spec: Pick<V1PodSpec, "volumes">): void {
  container.securityContext = { ...container.securityContext, readOnlyRootFilesystem: true };
  container.volumeMounts = [...(container.volumeMounts ?? []), { name: "tmp", mountPath: "/tmp" }];
  spec.volumes = [...(spec.volumes ?? []), { name: "tmp", emptyDir: { sizeLimit: "256Mi" } }];
}

/** Kubernetes runs containers as numeric ids only (runAsUser): a user name the image knows cannot be honoured. */
function numericUser(user: string | undefined): { uid: number; gid?: number } | null {
  if (user === undefined) return null;
  const [uid, gid] = user.split(":");
  if (!/^\d+$/.test(uid!) || (gid !== undefined && !/^\d+$/.test(gid)))
    throw new StepError(`the kubernetes runtime runs containers as numeric ids only: set user to uid or uid:gid instead of ${user}`);
  return { uid: Number(uid), ...(gid === undefined ? {} : { gid: Number(gid) }) };
}
