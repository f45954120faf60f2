import type { V1Deployment, V1ReplicaSet } from "@kubernetes/client-node";
import { ANNOTATION, LABEL } from "./labels";

/** The revision Kubernetes numbers each of a Deployment's ReplicaSets with (what `kubectl rollout undo` reads). */
export const REVISION = "deployment.kubernetes.io/revision";

function revisionOf(object: { metadata?: { annotations?: Record<string, string> } }): number {
  return Number(object.metadata?.annotations?.[REVISION] ?? 0);
}

/** The ReplicaSet of the Deployment's revision before its current one, among its own. */
export function previousReplicaSet(deployment: V1Deployment, replicaSets: V1ReplicaSet[]): V1ReplicaSet | null {
  const current = revisionOf(deployment);
  const owned = replicaSets.filter((set) =>
    set.metadata?.ownerReferences?.some((owner) => owner.kind === "Deployment" && owner.uid === deployment.metadata?.uid),
  );
  const older = owned.filter((set) => revisionOf(set) > 0 && revisionOf(set) < current).sort((a, b) => revisionOf(b) - revisionOf(a));
  return older[0] ?? null;
}

/**
 * The Deployment as it must be applied to undo its rollout: its spec with the previous
 * revision's pod template (as `kubectl rollout undo` does), and the release annotations of that
 * revision, so that labels say which release serves again. Applied in full by the `slipway`
 * field manager: server-side apply removes the fields a manager stops sending.
 */
export function rollbackManifest(deployment: V1Deployment, previous: V1ReplicaSet): V1Deployment {
  const template = structuredClone(previous.spec!.template!);
  // Added by the controller to tell its ReplicaSets apart; never part of what the Deployment asks.
  delete template.metadata?.labels?.["pod-template-hash"];
  const releaseId = template.metadata?.annotations?.[ANNOTATION.release];
  const annotations = Object.fromEntries(
    Object.entries(deployment.metadata?.annotations ?? {}).filter(([key]) => key !== REVISION && key !== ANNOTATION.commit && key !== ANNOTATION.deployment),
  );
  for (const key of [ANNOTATION.release, ANNOTATION.deployment, ANNOTATION.commit]) {
    const value = template.metadata?.annotations?.[key];
    if (value) annotations[key] = value;
  }
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: deployment.metadata!.name,
      namespace: deployment.metadata!.namespace,
      labels: { ...deployment.metadata?.labels, ...(releaseId ? { [LABEL.release]: releaseId } : {}) },
      annotations,
    },
    spec: { ...deployment.spec!, template },
  };
}
