import { z } from "zod";
import { currentMetrics, metricPoint, metricsSeries, metricWindow } from "../../metrics/metrics";
import { procedure, router } from "../trpc";

/** A service's live metrics: CPU, memory, restarts, request and error rates, latency percentiles. */
export const metricsRouter = router({
  series: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/services/{serviceId}/metrics",
        tags: ["metrics"],
        summary: "A service's metrics over a window (15m, 1h, 24h, 7d), oldest first",
      },
    })
    .input(z.object({ serviceId: z.string().uuid(), window: metricWindow.default("1h") }))
    .output(z.array(metricPoint))
    .query(({ ctx, input }) => metricsSeries(ctx.domain, input.serviceId, input.window)),
  current: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/services/{serviceId}/metrics/current",
        tags: ["metrics"],
        summary: "A service's latest metrics sample (null when it is not running)",
      },
    })
    .input(z.object({ serviceId: z.string().uuid() }))
    .output(z.object({ sample: metricPoint.nullable() }))
    .query(async ({ ctx, input }) => ({ sample: await currentMetrics(ctx.domain, input.serviceId) })),
});
