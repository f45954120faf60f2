import type { Command } from "commander";
import type { MetricsCurrent } from "../api-types";
import type { Context } from "../context";
import { resolveService } from "../paths";

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const ms = (value: number | null) => (value === null ? "—" : `${value.toFixed(1)} ms`);

/** `slipway metrics <project/env/service>`: the service's latest sample, as the dashboard's charts end. */
export function registerMetricsCommand(program: Command, ctx: Context): void {
  program
    .command("metrics")
    .description("A service's current CPU, memory, restarts, request and error rates, and latency")
    .argument("<project/env/service>")
    .option("--json", "print the sample as JSON")
    .action(async (pathText: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, pathText);
      const { sample } = await api.get<MetricsCurrent>(`/services/${serviceId}/metrics/current`);
      if (options.json) return ctx.printJson(sample);
      if (!sample) {
        ctx.print(`${pathText}: no sample in the last minute (not running, or its engine does not report metrics)`);
        return;
      }
      const limit = sample.memoryLimitBytes ? ` of ${mib(sample.memoryLimitBytes)} (${Math.round((sample.memoryBytes / sample.memoryLimitBytes) * 100)}%)` : "";
      ctx.print(
        [
          `${pathText} at ${sample.at}`,
          `CPU        ${sample.cpuPercent.toFixed(1)}%`,
          `Memory     ${mib(sample.memoryBytes)}${limit}`,
          `Restarts   ${sample.restarts}`,
          `Requests   ${sample.requestsPerSecond.toFixed(2)}/s`,
          `Errors     ${sample.errorsPerSecond.toFixed(2)}/s (5xx)`,
          `Latency    p50 ${ms(sample.p50Ms)}, p95 ${ms(sample.p95Ms)}, p99 ${ms(sample.p99Ms)}`,
        ].join("\n"),
      );
    });
}
