import type { V1CronJob, V1EnvVar, V1Job, V1JobSpec } from "@kubernetes/client-node";
import type { JobLifecycleEvent, JobServiceSpec } from "../../protocol";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import { StepError } from "../runtime";
import { type EnvironmentScope, LABEL, type ReleaseMeta, releaseAnnotations, selectorLabels, serviceMeta } from "./labels";
import { variablesSecretName } from "./secrets";
import { podSecurity, POD_DEFAULTS } from "./security";
import { resourcesOf } from "./workload";

/**
 * Where a run writes its outputs: the container's termination message
 * (https://kubernetes.io/docs/tasks/debug/debug-application/determine-reason-pod-failure/), which
 * Kubernetes keeps in the pod's status after it ends, so the engine reads them from the API
 * (at most 4096 bytes) with no volume to share.
 */
export const OUTPUT_FILE = "/dev/termination-log";

/**
 * The Job template of a run: the command in a shell (as on the other runtimes), retried
 * `retries` times (`backoffLimit`), each attempt bounded by the timeout (the pod's
 * `activeDeadlineSeconds`), never restarted in place.
 */
function jobSpec(service: JobServiceSpec, release: ReleaseMeta, image: string, databaseEnv: V1EnvVar[]): V1JobSpec {
  const security = podSecurity(undefined);
  return {
    backoffLimit: service.config.retries,
    ttlSecondsAfterFinished: 86_400,
    template: {
      metadata: { labels: { ...selectorLabels(service), [LABEL.release]: release.releaseId }, annotations: releaseAnnotations(release) },
      spec: {
        ...POD_DEFAULTS,
        restartPolicy: "Never",
        activeDeadlineSeconds: service.config.timeoutSeconds,
        securityContext: security.pod,
        containers: [
          {
            name: "job",
            image,
            imagePullPolicy: "IfNotPresent",
            command: ["/bin/sh", "-c", service.config.command],
            env: [
              { name: "SLIPWAY_OUTPUT_FILE", value: OUTPUT_FILE },
              { name: "SLIPWAY_RELEASE_ID", value: release.releaseId },
              ...(release.commit ? [{ name: "SLIPWAY_GIT_COMMIT", value: release.commit }] : []),
              ...databaseEnv,
            ],
            envFrom: [{ secretRef: { name: variablesSecretName(service.name, release.releaseId) } }],
            terminationMessagePath: OUTPUT_FILE,
            terminationMessagePolicy: "File",
            resources: resourcesOf(undefined),
            securityContext: security.container,
          },
        ],
      },
    },
  };
}

/**
 * A cron JOB as a CronJob: its schedule in its time zone, one run at a time (a run still going
 * when the next is due makes that one skip), and what it does about missed runs: "run-once" is
 * the CronJob controller's own behaviour (it starts one run for the runs it missed), "skip" runs
 * none that is more than a minute late.
 */
export function cronJobManifest(
  scope: EnvironmentScope,
  service: JobServiceSpec,
  release: ReleaseMeta,
  image: string,
  databaseEnv: V1EnvVar[] = [],
): V1CronJob {
  const trigger = service.config.trigger;
  if (trigger.type !== "cron") throw new Error("only cron jobs have a CronJob");
  const fields = trigger.schedule.trim().split(/\s+/);
  if (fields.length !== 5)
    throw new StepError(
      `the kubernetes runtime takes five-field cron schedules (minute hour day month weekday): "${trigger.schedule}" has ${fields.length} fields`,
    );
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: serviceMeta(scope, service, release),
    spec: {
      schedule: trigger.schedule.trim(),
      timeZone: trigger.timeZone,
      concurrencyPolicy: "Forbid",
      ...(trigger.missedRuns === "skip" ? { startingDeadlineSeconds: 60 } : {}),
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: { ...selectorLabels(service), [LABEL.release]: release.releaseId } },
        spec: jobSpec(service, release, image, databaseEnv),
      },
    },
  };
}

/** One run of a JOB on a lifecycle event: a Job whose completion the deployment waits for. */
export function lifecycleJobManifest(
  scope: EnvironmentScope,
  service: JobServiceSpec,
  release: ReleaseMeta,
  image: string,
  event: JobLifecycleEvent,
  runId: string,
  databaseEnv: V1EnvVar[] = [],
): V1Job {
  const meta = serviceMeta(scope, service, release, lifecycleJobName(service.name, event, runId));
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { ...meta, labels: { ...meta.labels, [LABEL.run]: event } },
    spec: jobSpec(service, release, image, databaseEnv),
  };
}

/** `<service>-<event>-<run>`: a fresh Job per run (a Job's template cannot change), at most 63 characters. */
export function lifecycleJobName(serviceName: string, event: JobLifecycleEvent, runId: string): string {
  return `${kubernetesObjectName(serviceName)}-${event}-${runId}`.slice(0, 63).replace(/-+$/, "");
}
