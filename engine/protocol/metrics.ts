import { z } from "zod";

/**
 * Metrics of a service's live release, sampled by the engine every few seconds: resources from
 * the runtime (CPU, memory, restarts), traffic from the router's counters (rates over the
 * interval since the previous sample, latency percentiles from its histogram).
 */
export const metricSample = z.object({
  serviceId: z.string().uuid(),
  at: z.string().datetime(),
  /** Percent of one core over the interval (200 = two cores busy). */
  cpuPercent: z.number().nonnegative(),
  memoryBytes: z.number().int().nonnegative(),
  memoryLimitBytes: z.number().int().positive().nullable(),
  restarts: z.number().int().nonnegative(),
  requestsPerSecond: z.number().nonnegative(),
  /** Answers with a 5xx status (and upstream failures) per second. */
  errorsPerSecond: z.number().nonnegative(),
  /** Latency percentiles through the router over the interval; null when it saw no request. */
  p50Ms: z.number().nonnegative().nullable(),
  p95Ms: z.number().nonnegative().nullable(),
  p99Ms: z.number().nonnegative().nullable(),
});
export type MetricSample = z.infer<typeof metricSample>;

/** Upper bounds (ms) of the router's latency histogram buckets; one more bucket counts the rest. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000] as const;

/**
 * The p-th percentile (0..100) of a histogram over LATENCY_BUCKETS_MS (counts per bucket, the
 * last one open-ended), interpolated linearly inside its bucket; null for an empty histogram.
 */
export function histogramPercentile(counts: readonly number[], p: number): number | null {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total <= 0) return null;
  const rank = (p / 100) * total;
  let seen = 0;
  for (let index = 0; index < counts.length; index++) {
    const count = counts[index] ?? 0;
    if (count > 0 && seen + count >= rank) {
      const lower = index === 0 ? 0 : LATENCY_BUCKETS_MS[index - 1]!;
      // The open-ended bucket reports its lower bound: there is no upper one to interpolate to.
      const upper = LATENCY_BUCKETS_MS[index] ?? lower;
      return lower + (upper - lower) * Math.min(1, Math.max(0, (rank - seen) / count));
    }
    seen += count;
  }
  return LATENCY_BUCKETS_MS.at(-1)!;
}
