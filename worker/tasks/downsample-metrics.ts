import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { downsampleMetrics as downsample } from "../../server/metrics/metrics";
import { taskCatalog } from "../../server/jobs/catalog";

/** Every minute (crontab): roll raw metric samples up into minute averages, drop raw samples older than 24 hours. */
export function downsampleMetrics(services: Services): Task {
  return async (payload, helpers) => {
    taskCatalog.downsample_metrics.parse(payload ?? {});
    const result = await downsample(services);
    if (result.rolledUp + result.deletedRaw > 0) {
      helpers.logger.debug(`metrics: ${result.rolledUp} minute averages, ${result.deletedRaw} raw samples deleted`);
    }
  };
}
