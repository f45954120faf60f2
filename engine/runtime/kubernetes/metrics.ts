import type { KubernetesObject, PodMetric, V1Pod } from "@kubernetes/client-node";
// The API's quantity format ("250m", "123456Ki") read by client-node's own parser (a deep import: not part of its public API).
import { quantityToScalar } from "@kubernetes/client-node/dist/util.js";
import type { ServiceSample } from "../runtime";

/**
 * Metrics of a service's pods (issue 18, item 5) from the resource metrics API a metrics server
 * serves (https://kubernetes.io/docs/reference/external-api/metrics.v1beta1/): each PodMetrics
 * has each container's CPU use, averaged over its `window`, and its memory working set.
 */
export const METRICS_API_VERSION = "metrics.k8s.io/v1beta1";
export const POD_METRICS = "PodMetrics";

export type PodMetrics = KubernetesObject & Pick<PodMetric, "timestamp" | "window" | "containers">;

/**
 * The service's pods taken together, as one sample like the other runtimes' one release: CPU in
 * percent of one core (the cores in use times 100) and memory summed over the pods the metrics
 * server measured; their memory limits summed (none when a container has none); the restarts of
 * all their containers. Measured at the newest PodMetrics' time.
 */
export function serviceSample(metrics: PodMetrics[], pods: V1Pod[]): ServiceSample {
  let cores = 0;
  let memoryBytes = 0;
  let at = "";
  for (const pod of metrics) {
    for (const container of pod.containers) {
      cores += Number(quantityToScalar(container.usage.cpu));
      memoryBytes += Number(quantityToScalar(container.usage.memory));
    }
    if (pod.timestamp > at) at = pod.timestamp;
  }
  const measured = new Set(metrics.map((pod) => pod.metadata?.name));
  const limits = pods
    .filter((pod) => measured.has(pod.metadata?.name))
    .flatMap((pod) => pod.spec?.containers ?? [])
    .map((container) => container.resources?.limits?.memory);
  return {
    at: at ? new Date(at).toISOString() : new Date().toISOString(),
    cpuPercent: Math.round(cores * 100 * 100) / 100,
    memoryBytes,
    memoryLimitBytes: limits.length > 0 && limits.every(Boolean) ? limits.reduce((sum, limit) => sum + Number(quantityToScalar(limit!)), 0) : null,
    restarts: pods.flatMap((pod) => pod.status?.containerStatuses ?? []).reduce((sum, status) => sum + status.restartCount, 0),
  };
}
