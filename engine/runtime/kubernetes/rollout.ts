import type { V1Deployment, V1Job, V1Pod, V1StatefulSet } from "@kubernetes/client-node";

/**
 * Rollout decisions, from the objects' status alone (pure): what the controllers report in
 * `status` and `conditions`, read as `kubectl rollout status` reads them
 * (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status).
 */
export type RolloutState = { state: "progressing"; message: string } | { state: "available"; message: string } | { state: "failed"; message: string };

export function deploymentRollout(deployment: V1Deployment): RolloutState {
  const { metadata, spec, status } = deployment;
  const name = metadata?.name ?? "deployment";
  if ((status?.observedGeneration ?? 0) < (metadata?.generation ?? 1))
    return { state: "progressing", message: `waiting for the controller to see ${name}'s new spec` };
  const progressing = status?.conditions?.find((condition) => condition.type === "Progressing");
  if (progressing?.reason === "ProgressDeadlineExceeded")
    return { state: "failed", message: `${name} made no progress within its deadline (${spec?.progressDeadlineSeconds ?? 600}s)` };
  const wanted = spec?.replicas ?? 1;
  const updated = status?.updatedReplicas ?? 0;
  const total = status?.replicas ?? 0;
  const available = status?.availableReplicas ?? 0;
  if (updated < wanted) return { state: "progressing", message: `${updated} of ${wanted} new pods created` };
  if (total > updated) return { state: "progressing", message: `${total - updated} old pods pending termination` };
  if (available < updated) return { state: "progressing", message: `${available} of ${updated} new pods available` };
  return { state: "available", message: `${available} of ${wanted} pods available` };
}

export function statefulSetRollout(statefulSet: V1StatefulSet): RolloutState {
  const { metadata, spec, status } = statefulSet;
  if ((status?.observedGeneration ?? 0) < (metadata?.generation ?? 1))
    return { state: "progressing", message: "waiting for the controller to see the new spec" };
  const wanted = spec?.replicas ?? 1;
  const ready = status?.readyReplicas ?? 0;
  if (status?.updateRevision && status.currentRevision !== status.updateRevision)
    return { state: "progressing", message: `${status.updatedReplicas ?? 0} of ${wanted} pods updated` };
  if (ready < wanted) return { state: "progressing", message: `${ready} of ${wanted} pods ready` };
  return { state: "available", message: `${ready} of ${wanted} pods ready` };
}

export type JobState = { state: "running"; message: string } | { state: "succeeded"; message: string } | { state: "failed"; message: string };

/** A Job ends with a Complete or Failed condition (https://kubernetes.io/docs/concepts/workloads/controllers/job/#terminal-job-conditions). */
export function jobState(job: V1Job): JobState {
  const done = job.status?.conditions?.find((condition) => (condition.type === "Complete" || condition.type === "Failed") && condition.status === "True");
  if (done?.type === "Complete") return { state: "succeeded", message: `succeeded after ${1 + (job.status?.failed ?? 0)} attempt(s)` };
  if (done?.type === "Failed") return { state: "failed", message: `${done.reason ?? "failed"}: ${done.message ?? ""}`.replace(/: $/, "") };
  return { state: "running", message: `${job.status?.active ?? 0} running, ${job.status?.failed ?? 0} failed` };
}

/** A Job as a rollout the deployment waits for: progressing while it runs, available once it succeeded. */
export function jobRollout(job: V1Job): RolloutState {
  const current = jobState(job);
  return current.state === "running"
    ? { state: "progressing", message: current.message }
    : current.state === "succeeded"
      ? { state: "available", message: current.message }
      : current;
}

/** What keeps a pod from running, in the user's terms; a CrashLoopBackOff names its container so that its last lines can be read. */
export type PodProblem = { pod: string; reason: string; message: string; crashedContainer?: string };

const PULL_FAILURES = new Set(["ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"]);
const START_FAILURES = new Set(["CreateContainerConfigError", "CreateContainerError", "RunContainerError"]);

/** The problems of pods, from their status (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#PodStatus). */
export function podProblems(pods: V1Pod[]): PodProblem[] {
  return pods.flatMap((pod): PodProblem[] => {
    const name = pod.metadata?.name ?? "pod";
    const unschedulable = pod.status?.conditions?.find(
      (condition) => condition.type === "PodScheduled" && condition.status === "False" && condition.reason === "Unschedulable",
    );
    if (unschedulable) return [{ pod: name, reason: "Unschedulable", message: unschedulable.message ?? "the scheduler found no node" }];
    return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].flatMap((container): PodProblem[] => {
      const waiting = container.state?.waiting;
      if (waiting?.reason === "CrashLoopBackOff") {
        const last = container.lastState?.terminated;
        const exit = last ? `exit code ${last.exitCode}${last.reason ? ` (${last.reason})` : ""}, ` : "";
        return [{ pod: name, reason: "CrashLoopBackOff", message: `${exit}restarted ${container.restartCount} times`, crashedContainer: container.name }];
      }
      if (waiting?.reason && (PULL_FAILURES.has(waiting.reason) || START_FAILURES.has(waiting.reason)))
        return [{ pod: name, reason: waiting.reason, message: waiting.message ?? container.image }];
      const terminated = container.state?.terminated;
      if (terminated && terminated.exitCode !== 0)
        return [{ pod: name, reason: terminated.reason ?? "Error", message: `exit code ${terminated.exitCode}`, crashedContainer: container.name }];
      return [];
    });
  });
}

/** The reasons in one message, a crashed container's last lines under it. */
export function describeProblems(problems: PodProblem[], lastLines: Map<string, string[]>): string {
  if (problems.length === 0) return "no pod reported a reason";
  return problems
    .map((problem) => {
      const lines = lastLines.get(problem.pod) ?? [];
      return `pod ${problem.pod}: ${problem.reason}: ${problem.message}${lines.length > 0 ? `; last lines:\n${lines.join("\n")}` : ""}`;
    })
    .join("\n");
}
