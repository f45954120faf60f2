import type { MetricSample } from "./protocol/metrics";
import { histogramPercentile } from "./protocol/metrics";
import type { RuntimeServiceState } from "./protocol/messages";
import { routerClient } from "./router/router-process";
import type { ServiceCounters } from "./router/routes";
import type { ServiceSample } from "./runtime/runtime";

/**
 * Turns the runtime's samples (CPU, memory, restarts) and the router's cumulative counters into
 * `MetricSample`s: rates are the counters' differences over the time since the previous
 * collection, latency percentiles come from the difference of the two histograms. A router that
 * restarted (counters went down) starts a new baseline.
 */
export function createMetricsCollector(options: {
  home: string;
  services: () => RuntimeServiceState[];
  sample: (serviceId: string) => Promise<ServiceSample>;
}) {
  const router = routerClient(options.home);
  let previous: { at: number; counters: Record<string, ServiceCounters> } | null = null;

  return async function collect(): Promise<MetricSample[]> {
    const stats = await router.stats().catch(() => null);
    const now = performance.now();
    const seconds = previous ? Math.max(0.001, (now - previous.at) / 1000) : 0;
    const samples: MetricSample[] = [];
    for (const service of options.services()) {
      if (service.state === "stopped") continue;
      let resources: ServiceSample;
      try {
        resources = await options.sample(service.serviceId);
      } catch {
        continue;
      }
      const current = stats?.services[service.serviceId];
      const before = previous?.counters[service.serviceId];
      let requests = 0;
      let errors = 0;
      let histogram: number[] = [];
      if (current && seconds > 0) {
        const restarted = !before || current.requests < before.requests;
        requests = restarted ? current.requests : current.requests - before.requests;
        errors = restarted ? current.errors : current.errors - before.errors;
        const now = current.latencyBuckets ?? [];
        histogram = now.map((count, index) => (restarted ? count : count - (before?.latencyBuckets?.[index] ?? 0)));
      }
      const round = (value: number | null) => (value === null ? null : Math.round(value * 100) / 100);
      samples.push({
        serviceId: service.serviceId,
        at: resources.at,
        cpuPercent: resources.cpuPercent,
        memoryBytes: Math.round(resources.memoryBytes),
        memoryLimitBytes: resources.memoryLimitBytes,
        restarts: resources.restarts,
        requestsPerSecond: seconds > 0 ? Math.round((requests / seconds) * 100) / 100 : 0,
        errorsPerSecond: seconds > 0 ? Math.round((errors / seconds) * 100) / 100 : 0,
        p50Ms: round(histogramPercentile(histogram, 50)),
        p95Ms: round(histogramPercentile(histogram, 95)),
        p99Ms: round(histogramPercentile(histogram, 99)),
      });
    }
    if (stats) previous = { at: now, counters: stats.services };
    return samples;
  };
}
