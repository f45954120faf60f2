import { Option, type Command } from "commander";
import sparkly from "sparkly";
import type { MetricPoint, MetricsCurrent, MetricWindow } from "../api-types";
import type { Context } from "../context";
import { table } from "../format";
import { resolveService } from "../paths";

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const ms = (value: number | null) => (value === null ? "—" : `${value.toFixed(1)} ms`);
const percent = (value: number) => `${value.toFixed(1)}%`;
const rate = (value: number) => `${value.toFixed(2)}/s`;

/**
 * The API's windows (`GET /services/{id}/metrics?window=`) and their lengths. Keyed by the API's
 * own input type, so `tsc` fails here when the server adds or renames one; the keys are also the
 * choices `--window` accepts, so a bad one is refused before any request.
 */
const windowMs = {
  "15m": 15 * 60_000,
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
} as const satisfies Record<MetricWindow, number>;
const windowNames = Object.keys(windowMs) as MetricWindow[];

/** Columns of a sparkline: narrow enough that a row still fits in 80 columns beside its figures. */
const SPARKLINE_COLUMNS = 40;

/** `slipway metrics <project/env/service>`: the latest sample, or a window's averages, peaks and sparklines. */
export function registerMetricsCommand(program: Command, ctx: Context): void {
  program
    .command("metrics")
    .description("A service's CPU, memory, restarts, request and error rates, and latency: now, or over a window")
    .argument("<project/env/service>")
    .addOption(
      new Option(
        "--window <window>",
        "averages, peaks, restarts and a sparkline per series over this window, as the dashboard's charts (over 24h and 7d the API averages samples by the minute and ten minutes: peaks are of those averages)",
      ).choices(windowNames),
    )
    .option("--json", "print the sample (with --window: the series, oldest first) as JSON")
    .action(async (pathText: string, options: { json?: boolean; window?: MetricWindow }) => {
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, pathText);
      if (options.window) {
        const series = await api.get<MetricPoint[]>(`/services/${serviceId}/metrics`, { window: options.window });
        if (options.json) return ctx.printJson(series);
        ctx.print(windowReport(pathText, options.window, series, new Date()));
        return;
      }
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

type Row = { series: string; average: string | null; peak: string | null; sparkline: string };

/** The human report of a window: one row per series, then the memory limit and the restarts. */
function windowReport(pathText: string, window: MetricWindow, series: readonly MetricPoint[], now: Date): string {
  if (series.length === 0) return `${pathText}: no sample in the last ${window} (not running, or its engine does not report metrics)`;
  const axis = { from: now.getTime() - windowMs[window], to: now.getTime() };
  const row = (name: string, value: (point: MetricPoint) => number | null, format: (value: number) => string, withAverage = true): Row => {
    const values = series.map(value);
    const present = values.filter((v): v is number => v !== null);
    return {
      series: name,
      average: withAverage && present.length > 0 ? format(mean(present)) : null,
      peak: present.length > 0 ? format(Math.max(...present)) : null,
      sparkline: sparkline(series, values, axis),
    };
  };
  const rows = [
    row("CPU", (p) => p.cpuPercent, percent),
    row("Memory", (p) => p.memoryBytes, mib),
    row("Requests", (p) => p.requestsPerSecond, rate),
    row("Errors (5xx)", (p) => p.errorsPerSecond, rate),
    // An average of percentiles is no percentile of anything: latency shows its peaks only.
    row("Latency p50", (p) => p.p50Ms, ms, false),
    row("Latency p95", (p) => p.p95Ms, ms, false),
    row("Latency p99", (p) => p.p99Ms, ms, false),
  ];
  const limit = series.findLast((point) => point.memoryLimitBytes !== null)?.memoryLimitBytes;
  return [
    `${pathText} over the last ${window}: ${series.length} points, ${series[0]!.at} to ${series.at(-1)!.at}`,
    table(rows, [
      { header: "SERIES", value: (r) => r.series },
      { header: "AVERAGE", value: (r) => r.average },
      { header: "PEAK", value: (r) => r.peak },
      { header: `LAST ${window.toUpperCase()}`, value: (r) => r.sparkline },
    ]),
    ...(limit ? [`Memory limit  ${mib(limit)}`] : []),
    `Restarts      ${restartsIn(series)} in the window`,
  ].join("\n");
}

const mean = (values: readonly number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

/**
 * The window's time axis cut into SPARKLINE_COLUMNS columns, each the peak of the points in it
 * (a burst stays visible however many quiet samples share its column), from zero up; a column
 * with no point is a blank: the service was not running, or not sampled, then.
 */
function sparkline(series: readonly MetricPoint[], values: readonly (number | null)[], axis: { from: number; to: number }): string {
  const columns: (number | null)[] = Array<number | null>(SPARKLINE_COLUMNS).fill(null);
  const width = (axis.to - axis.from) / SPARKLINE_COLUMNS;
  series.forEach((point, index) => {
    const value = values[index];
    if (value === null || value === undefined) return;
    // Clamped: the control plane's clock and this one's differ by a little.
    const column = Math.min(SPARKLINE_COLUMNS - 1, Math.max(0, Math.floor((Date.parse(point.at) - axis.from) / width)));
    columns[column] = Math.max(columns[column] ?? value, value);
  });
  // sparkly leaves a blank for what is not a finite number.
  return sparkly(
    columns.map((value) => value ?? Number.NaN),
    { minimum: 0 },
  );
}

/**
 * Restarts during the window: `restarts` counts those of the live release and starts again from
 * zero with a new one, so each rise between points counts, and after a drop (a deploy) the new
 * release's whole count does. What the first point already counted happened before the window.
 */
function restartsIn(series: readonly MetricPoint[]): number {
  let total = 0;
  for (let index = 1; index < series.length; index++) {
    const before = series[index - 1]!.restarts;
    const now = series[index]!.restarts;
    total += now >= before ? now - before : now;
  }
  return total;
}
