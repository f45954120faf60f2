/**
 * Test support: API objects as the cluster reports them, written by hand from the Kubernetes API
 * reference, each naming the page and version it follows. They are what a controller or the
 * kubelet would have written into `status`; no controller ran to make them.
 */
import type { V1Deployment, V1Job, V1PersistentVolumeClaim, V1Pod, V1ReplicaSet, V1Secret } from "@kubernetes/client-node";
import type { CnpgCluster } from "../cnpg";
import type { PodMetrics } from "../metrics";

/**
 * A Deployment's status after its controller saw the applied spec.
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/#DeploymentStatus (v1.33);
 * condition reasons: https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status (v1.33):
 * Progressing/ReplicaSetUpdated while it rolls, Progressing/NewReplicaSetAvailable once complete,
 * Progressing=False/ProgressDeadlineExceeded when it made no progress within progressDeadlineSeconds.
 */
export function withDeploymentStatus(
  applied: V1Deployment,
  status: {
    replicas: number;
    updated: number;
    available: number;
    progressing: "ReplicaSetUpdated" | "NewReplicaSetAvailable" | "ProgressDeadlineExceeded";
    revision: number;
    uid?: string;
  },
): V1Deployment {
  const name = applied.metadata!.name!;
  const deadline = status.progressing === "ProgressDeadlineExceeded";
  return {
    ...structuredClone(applied),
    metadata: {
      ...structuredClone(applied.metadata!),
      uid: status.uid ?? "9a8b7c6d-0000-4000-8000-00000000d001",
      annotations: { ...applied.metadata!.annotations, "deployment.kubernetes.io/revision": String(status.revision) },
    },
    status: {
      // The controller has seen the spec it reports on.
      observedGeneration: applied.metadata!.generation ?? 1,
      replicas: status.replicas,
      updatedReplicas: status.updated,
      readyReplicas: status.available,
      availableReplicas: status.available,
      unavailableReplicas: status.replicas - status.available,
      conditions: [
        {
          type: "Available",
          status: status.available > 0 ? "True" : "False",
          reason: status.available > 0 ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
          message: status.available > 0 ? "Deployment has minimum availability." : "Deployment does not have minimum availability.",
        },
        {
          type: "Progressing",
          status: deadline ? "False" : "True",
          reason: status.progressing,
          message: deadline
            ? `ReplicaSet "${name}-7d4b9c8f6d" has timed out progressing.`
            : status.progressing === "NewReplicaSetAvailable"
              ? `ReplicaSet "${name}-7d4b9c8f6d" has successfully progressed.`
              : `ReplicaSet "${name}-7d4b9c8f6d" is progressing.`,
        },
      ],
    },
  };
}

/**
 * A ReplicaSet the Deployment controller made for one revision: owned by the Deployment, its pod
 * template with the `pod-template-hash` label the controller adds, its revision annotation.
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/replica-set-v1/ (v1.33);
 * the revision annotation: https://kubernetes.io/docs/reference/labels-annotations-taints/#deployment-kubernetes-io-revision (v1.33).
 */
export function replicaSetOf(deployment: V1Deployment, revision: number, hash: string, template = deployment.spec!.template): V1ReplicaSet {
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `${deployment.metadata!.name}-${hash}`,
      namespace: deployment.metadata!.namespace,
      labels: { ...template.metadata?.labels, "pod-template-hash": hash },
      annotations: { "deployment.kubernetes.io/revision": String(revision) },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          name: deployment.metadata!.name!,
          uid: deployment.metadata!.uid ?? "9a8b7c6d-0000-4000-8000-00000000d001",
          controller: true,
        },
      ],
    },
    spec: {
      replicas: 0,
      selector: deployment.spec!.selector,
      template: {
        ...structuredClone(template),
        metadata: { ...structuredClone(template.metadata), labels: { ...template.metadata?.labels, "pod-template-hash": hash } },
      },
    },
  };
}

/**
 * Pods of a release in the states the kubelet and the scheduler report.
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#PodStatus (v1.33),
 * ContainerStateWaiting's reason and message, ContainerStatus.lastState and restartCount;
 * the PodScheduled condition's Unschedulable reason with the scheduler's message:
 * https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-conditions (v1.33);
 * waiting reasons as in https://kubernetes.io/docs/concepts/containers/images/#imagepullbackoff (v1.33)
 * and https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-restarts (CrashLoopBackOff, v1.33).
 */
export function pod(
  name: string,
  labels: Record<string, string>,
  namespace: string,
  state: "crash-loop" | "image-pull" | "unschedulable" | "running" | "succeeded",
  extra: { message?: string } = {},
): V1Pod {
  const base: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels, creationTimestamp: new Date("2026-12-06T09:30:05Z") },
    spec: { containers: [{ name: "app", image: "ghcr.io/acme/web:1" }] },
  };
  switch (state) {
    case "unschedulable":
      return {
        ...base,
        status: {
          phase: "Pending",
          conditions: [
            {
              type: "PodScheduled",
              status: "False",
              reason: "Unschedulable",
              message: "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
            },
          ],
        },
      };
    case "image-pull":
      return {
        ...base,
        status: {
          phase: "Pending",
          containerStatuses: [
            {
              name: "app",
              image: "ghcr.io/acme/web:missing",
              imageID: "",
              ready: false,
              restartCount: 0,
              state: { waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "ghcr.io/acme/web:missing"' } },
            },
          ],
        },
      };
    case "crash-loop":
      return {
        ...base,
        status: {
          phase: "Running",
          containerStatuses: [
            {
              name: "app",
              image: "ghcr.io/acme/web:1",
              imageID: "ghcr.io/acme/web@sha256:0f1e2d3c",
              ready: false,
              restartCount: 4,
              state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 1m20s restarting failed container=app pod=" + name } },
              lastState: {
                terminated: { exitCode: 1, reason: "Error", startedAt: new Date("2026-12-06T09:31:00Z"), finishedAt: new Date("2026-12-06T09:31:01Z") },
              },
            },
          ],
        },
      };
    case "running":
      return {
        ...base,
        status: {
          phase: "Running",
          containerStatuses: [
            {
              name: "app",
              image: "ghcr.io/acme/web:1",
              imageID: "ghcr.io/acme/web@sha256:0f1e2d3c",
              ready: true,
              restartCount: 0,
              state: { running: { startedAt: new Date("2026-12-06T09:30:06Z") } },
            },
          ],
        },
      };
    case "succeeded":
      return {
        ...base,
        spec: { containers: [{ name: "job", image: "registry.example.com/job:1" }], restartPolicy: "Never" },
        status: {
          phase: "Succeeded",
          containerStatuses: [
            {
              name: "job",
              image: "registry.example.com/job:1",
              imageID: "registry.example.com/job@sha256:1a2b",
              ready: false,
              restartCount: 0,
              // terminationMessagePath's content is the terminated state's message (ContainerStateTerminated.message).
              state: { terminated: { exitCode: 0, reason: "Completed", message: extra.message ?? "" } },
            },
          ],
        },
      };
  }
}

/**
 * A Job's terminal status. Reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/job-v1/#JobStatus (v1.33);
 * terminal conditions: https://kubernetes.io/docs/concepts/workloads/controllers/job/#terminal-job-conditions (v1.33):
 * Complete (reason CompletionsReached since 1.31) or Failed (BackoffLimitExceeded, DeadlineExceeded).
 */
export function withJobStatus(applied: V1Job, outcome: "complete" | "backoff-limit"): V1Job {
  return {
    ...structuredClone(applied),
    status:
      outcome === "complete"
        ? {
            succeeded: 1,
            conditions: [
              { type: "SuccessCriteriaMet", status: "True", reason: "CompletionsReached" },
              { type: "Complete", status: "True", reason: "CompletionsReached", message: "Reached expected number of succeeded pods" },
            ],
          }
        : {
            failed: 2,
            conditions: [
              { type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded" },
              { type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" },
            ],
          },
  };
}

/**
 * A CloudNativePG Cluster's status as its operator reports it.
 * Reference: CloudNativePG's API reference, ClusterStatus, v1.30.0
 * (docs/src/cloudnative-pg.v1.md#clusterstatus of the v1.30.0 release, published at
 * https://cloudnative-pg.io/documentation/current/cloudnative-pg.v1/): `phase`, `phaseReason`,
 * `instances`, `readyInstances`, `conditions`. The phases as api/v1/cluster_types.go of that
 * release spells them; the `Ready` condition, its reasons and messages as the operator sets them
 * from the phase (pkg/resources/status/transactions.go, SetClusterReadyCondition); the
 * unrecoverable phase's reason as the operator words a failed instance creation
 * (internal/controller/cluster_controller.go). Hibernated: its pods deleted, no instance ready,
 * the `cnpg.io/hibernation` condition True with reason Hibernated, the phase left as it was (the
 * hibernation reconciler registers none: pkg/reconciler/hibernation/).
 */
export function withCnpgClusterStatus(applied: CnpgCluster, state: "setting-up" | "healthy" | "unrecoverable" | "hibernated"): CnpgCluster {
  const generation = applied.metadata.generation ?? 1;
  const ready = state === "healthy" || state === "hibernated";
  return {
    ...structuredClone(applied),
    status: {
      phase:
        state === "healthy" || state === "hibernated"
          ? "Cluster in healthy state"
          : state === "setting-up"
            ? "Setting up primary"
            : "Cluster is unrecoverable and needs manual intervention",
      ...(state === "unrecoverable"
        ? { phaseReason: "Instance creation failed for the following jobs: db-1-initdb. Check the job logs to investigate the cause of the failure." }
        : {}),
      instances: 1,
      readyInstances: state === "healthy" ? 1 : 0,
      conditions: [
        {
          type: "Ready",
          status: ready ? "True" : "False",
          reason: ready ? "ClusterIsReady" : "ClusterIsNotReady",
          message: ready ? "Cluster is Ready" : "Cluster Is Not Ready",
          observedGeneration: generation,
        },
        ...(state === "hibernated"
          ? [{ type: "cnpg.io/hibernation", status: "True", reason: "Hibernated", message: "Cluster has been hibernated", observedGeneration: generation }]
          : []),
      ],
    },
  };
}

/**
 * A pod's metrics as a metrics server reports them: each container's CPU (cores, here in
 * nanocores as metrics-server writes them) and memory working set (Ki), averaged over `window`,
 * the pod's labels on the object (a label selector lists them).
 * Reference: https://kubernetes.io/docs/reference/external-api/metrics.v1beta1/ (v1.33), PodMetrics and ContainerMetrics.
 */
export function podMetrics(name: string, labels: Record<string, string>, namespace: string, containers: { cpu: string; memory: string }[]): PodMetrics {
  return {
    apiVersion: "metrics.k8s.io/v1beta1",
    kind: "PodMetrics",
    metadata: { name, namespace, labels, creationTimestamp: new Date("2026-12-06T09:40:12Z") },
    timestamp: "2026-12-06T09:40:00Z",
    window: "15.011s",
    containers: containers.map((usage, index) => ({ name: index === 0 ? "app" : `sidecar-${index}`, usage })),
  };
}

/**
 * A bound PersistentVolumeClaim, as the StatefulSet controller makes it from a volume claim
 * template (`<template>-<pod>`, the template's labels) and the binder reports it.
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/persistent-volume-claim-v1/ (v1.33),
 * PersistentVolumeClaimStatus: `phase` Bound, `capacity` of the bound volume (at least the request).
 */
export function boundClaim(name: string, labels: Record<string, string>, namespace: string, requested: string, capacity: string): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace, labels },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: requested } }, volumeName: `pvc-${name}` },
    status: { phase: "Bound", accessModes: ["ReadWriteOnce"], capacity: { storage: capacity } },
  };
}

/**
 * A build Job's pod (build.ts: the `clone` init container, then the `build` container) in the
 * states the kubelet reports while it runs: cloning (the init container running), building (it
 * terminated with 0, the builder running), done (both terminated).
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#PodStatus (v1.33),
 * `initContainerStatuses` and `containerStatuses`; the Job controller's `batch.kubernetes.io/job-name` label:
 * https://kubernetes.io/docs/reference/labels-annotations-taints/#batch-kubernetes-io-job-name (v1.33).
 */
export function buildPod(name: string, job: string, namespace: string, stage: "cloning" | "building" | "done"): V1Pod {
  const started = new Date("2026-12-06T09:30:05Z");
  const finished = new Date("2026-12-06T09:30:09Z");
  const status = (container: string, state: "waiting" | "running" | "terminated") => ({
    name: container,
    image: container === "clone" ? "alpine/git:2.47.2" : "gcr.io/kaniko-project/executor:v1.23.2",
    imageID: "",
    ready: state === "running",
    restartCount: 0,
    state:
      state === "waiting"
        ? { waiting: { reason: "PodInitializing" } }
        : state === "running"
          ? { running: { startedAt: started } }
          : { terminated: { exitCode: 0, reason: "Completed", startedAt: started, finishedAt: finished } },
  });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { "batch.kubernetes.io/job-name": job, "job-name": job } },
    spec: { restartPolicy: "Never", initContainers: [{ name: "clone", image: "alpine/git:2.47.2" }], containers: [{ name: "build", image: "kaniko" }] },
    status: {
      phase: stage === "done" ? "Succeeded" : stage === "building" ? "Running" : "Pending",
      initContainerStatuses: [status("clone", stage === "cloning" ? "running" : "terminated")],
      containerStatuses: [status("build", stage === "cloning" ? "waiting" : stage === "building" ? "running" : "terminated")],
    },
  };
}

/**
 * The pod of a clone's copy Job (copy-data.ts: one container, `copy`) once it ended: Succeeded
 * with exit code 0, or Failed with the script's exit code (psql exits 3 when a script stops on an
 * error). Reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#PodStatus (v1.33),
 * `phase` and ContainerStateTerminated (`exitCode`, `reason` Completed or Error); the Job
 * controller's `batch.kubernetes.io/job-name` label:
 * https://kubernetes.io/docs/reference/labels-annotations-taints/#batch-kubernetes-io-job-name (v1.33).
 */
export function copyPod(name: string, job: string, namespace: string, outcome: "succeeded" | "failed", image = "postgres:17"): V1Pod {
  const started = new Date("2026-12-06T09:31:02Z");
  const finished = new Date("2026-12-06T09:31:09Z");
  const exitCode = outcome === "succeeded" ? 0 : 3;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { "batch.kubernetes.io/job-name": job, "job-name": job } },
    spec: { restartPolicy: "Never", containers: [{ name: "copy", image }] },
    status: {
      phase: outcome === "succeeded" ? "Succeeded" : "Failed",
      containerStatuses: [
        {
          name: "copy",
          image,
          imageID: `docker.io/library/${image}@sha256:5e2d1c0b`,
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode, reason: outcome === "succeeded" ? "Completed" : "Error", startedAt: started, finishedAt: finished } },
        },
      ],
    },
  };
}

/**
 * The `<cluster>-app` Secret CloudNativePG writes for a Cluster's application user (type
 * `kubernetes.io/basic-auth`, the connection details beside the credentials, the cluster's label).
 * Reference: https://cloudnative-pg.io/documentation/1.30/applications/#secrets (v1.30): the keys
 * `username`, `password`, `host`, `port`, `dbname` and `uri` (among others this runtime does not
 * read), as the operator's pkg/specs/secrets.go of that release writes them.
 */
export function cnpgAppSecret(cluster: string, namespace: string, credentials: { user: string; password: string; database: string }): V1Secret {
  const host = `${cluster}-rw`;
  const data = {
    username: credentials.user,
    password: credentials.password,
    host,
    port: "5432",
    dbname: credentials.database,
    uri: `postgresql://${credentials.user}:${credentials.password}@${host}.${namespace}:5432/${credentials.database}`,
  };
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/basic-auth",
    metadata: { name: `${cluster}-app`, namespace, labels: { "cnpg.io/cluster": cluster } },
    data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString("base64")])),
  };
}
