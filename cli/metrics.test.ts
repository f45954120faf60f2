import { beforeAll, describe, expect, it } from "vitest";
import type { MetricSample } from "../engine/protocol/metrics";
import { recordMetricBatch } from "../server/metrics/metrics";
import type { MetricPoint } from "./api-types";
import { startCliHarness, type CliHarness } from "./test-harness";

/**
 * `slipway metrics --window`: a low-traffic app's burst of requests, gone from the latest sample
 * seconds later, is in the window's averages, peaks and sparklines (samples shipped through the
 * function the engine gateway calls on `metrics:batch`).
 */
let h: CliHarness;
const MiB = 1024 * 1024;

/** One sample a minute for the last twelve minutes (the last one now), as an idle app with a burst of traffic shows. */
const burst = [
  { requests: 0, errors: 0, p99: null, restarts: 0 },
  { requests: 0, errors: 0, p99: null, restarts: 0 },
  { requests: 0, errors: 0, p99: null, restarts: 0 },
  { requests: 6, errors: 1.2, p99: 180, restarts: 0 },
  { requests: 3, errors: 0, p99: 250, restarts: 0 },
  { requests: 0, errors: 0, p99: null, restarts: 1 },
  { requests: 0, errors: 0, p99: null, restarts: 1 },
  { requests: 0, errors: 0, p99: null, restarts: 2 },
  { requests: 0, errors: 0, p99: null, restarts: 2 },
  // A deploy: the new release counts its restarts from zero.
  { requests: 0, errors: 0, p99: null, restarts: 0 },
  { requests: 0, errors: 0, p99: null, restarts: 0 },
  { requests: 0, errors: 0, p99: null, restarts: 1 },
] as const;

function sample(serviceId: string, at: Date, values: Partial<MetricSample> = {}): MetricSample {
  return {
    serviceId,
    at: at.toISOString(),
    cpuPercent: 0,
    memoryBytes: 100 * MiB,
    memoryLimitBytes: 512 * MiB,
    restarts: 0,
    requestsPerSecond: 0,
    errorsPerSecond: 0,
    p50Ms: null,
    p95Ms: null,
    p99Ms: null,
    ...values,
  };
}

beforeAll(async () => {
  h = await startCliHarness();
  expect((await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).code).toBe(0);
  expect((await h.cli(["project", "create", "shop"])).code).toBe(0);
  expect((await h.cli(["env", "create", "shop/dev"])).code).toBe(0);
  for (const name of ["web", "idle"]) expect((await h.cli(["service", "create", `shop/dev/${name}`, "--git", "https://example.test/shop.git"])).code).toBe(0);
  const web = JSON.parse((await h.cli(["service", "list", "shop/dev", "--json"])).stdout) as { id: string; name: string }[];
  const serviceId = web.find((service) => service.name === "web")!.id;

  const now = Date.now();
  const samples = burst.map((values, index) =>
    sample(serviceId, new Date(now - (burst.length - 1 - index) * 60_000), {
      cpuPercent: (index + 1) * 10,
      memoryBytes: index === 6 ? 200 * MiB : 100 * MiB,
      restarts: values.restarts,
      requestsPerSecond: values.requests,
      errorsPerSecond: values.errors,
      p50Ms: values.p99 === null ? null : values.p99 / 10,
      p95Ms: values.p99 === null ? null : values.p99 / 2,
      p99Ms: values.p99,
    }),
  );
  // Half an hour ago: in the last hour, not in the last 15 minutes.
  const earlier = sample(serviceId, new Date(now - 30 * 60_000), { requestsPerSecond: 100, cpuPercent: 300, p99Ms: 900, p95Ms: 400, p50Ms: 50 });
  expect(await recordMetricBatch(h.services, h.org.clusterId, [earlier, ...samples])).toBe(burst.length + 1);
});

/** The report's row of a series, cut where the header's columns start (a sparkline has blanks in it). */
function rowOf(stdout: string, label: string): string[] {
  const lines = stdout.split("\n");
  const header = lines.find((text) => text.startsWith("SERIES"))!;
  const starts = [...header.matchAll(/\S+( \S+)?/g)].map((match) => match.index);
  const line = lines.find((text) => text.startsWith(`${label}  `));
  expect(line, `no ${label} row in:\n${stdout}`).toBeDefined();
  return starts.slice(1).map((start, index) => line!.slice(start, starts[index + 2]).trimEnd());
}

describe("slipway metrics", () => {
  it("shows the latest sample by default: the burst is gone from it", async () => {
    const result = await h.cli(["metrics", "shop/dev/web"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toContain("Requests   0.00/s\n");
    expect(result.stdout).toContain("Restarts   1\n");
  });

  it("--window 15m prints the window's averages, peaks, restarts and a sparkline per series", async () => {
    const result = await h.cli(["metrics", "shop/dev/web", "--window", "15m"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const { stdout } = result;
    expect(stdout).toMatch(/^shop\/dev\/web over the last 15m: 12 points, \S+Z to \S+Z\n/);
    expect(stdout).toMatch(/^SERIES +AVERAGE +PEAK +LAST 15M$/m);
    // CPU 10% … 120%; memory 100 MiB but one 200 MiB sample; 9 requests/s over 12 samples.
    expect(rowOf(stdout, "CPU").slice(0, 2)).toEqual(["65.0%", "120.0%"]);
    expect(rowOf(stdout, "Memory").slice(0, 2)).toEqual(["108.3 MiB", "200.0 MiB"]);
    expect(rowOf(stdout, "Requests").slice(0, 2)).toEqual(["0.75/s", "6.00/s"]);
    expect(rowOf(stdout, "Errors (5xx)").slice(0, 2)).toEqual(["0.10/s", "1.20/s"]);
    // Latency: peaks only, of the samples that saw requests.
    expect(rowOf(stdout, "Latency p50").slice(0, 2)).toEqual(["-", "25.0 ms"]);
    expect(rowOf(stdout, "Latency p95").slice(0, 2)).toEqual(["-", "125.0 ms"]);
    expect(rowOf(stdout, "Latency p99").slice(0, 2)).toEqual(["-", "250.0 ms"]);
    expect(stdout).toContain("Memory limit  512.0 MiB\n");
    // 0→1, 1→2, then a deploy (2→0) and 0→1: three restarts, none counted twice.
    expect(stdout).toContain("Restarts      3 in the window\n");

    // The requests' sparkline: one column per sample (a minute apart, columns are 22.5 s), the
    // burst the highest, idle minutes at the floor, and nothing before the samples began.
    const requests = rowOf(stdout, "Requests")[2]!;
    expect(requests.replace(/ /g, "")).toMatch(/^▁▁▁█▄▁▁▁▁▁▁▁$/);
    expect(requests.length).toBeLessThanOrEqual(40);
    const cpu = rowOf(stdout, "CPU")[2]!.replace(/ /g, "");
    expect(cpu).toHaveLength(12);
    expect(cpu.at(-1)).toBe("█");
  });

  it("--window 1h takes in what the last 15 minutes leave out", async () => {
    const { stdout, code } = await h.cli(["metrics", "shop/dev/web", "--window", "1h"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^shop\/dev\/web over the last 1h: 13 points/);
    expect(rowOf(stdout, "Requests")[1]).toBe("100.00/s");
    expect(rowOf(stdout, "CPU")[1]).toBe("300.0%");
    expect(rowOf(stdout, "Latency p99")[1]).toBe("900.0 ms");
  });

  it("--window 24h reads the minute averages the API returns for long windows", async () => {
    const { stdout, code } = await h.cli(["metrics", "shop/dev/web", "--window", "24h"]);
    expect(code).toBe(0);
    expect(rowOf(stdout, "Requests")[1]).toBe("100.00/s");
    expect(stdout).toContain("Restarts      3 in the window\n");
  });

  it("--json with --window prints the series, oldest first", async () => {
    const { stdout, code } = await h.cli(["metrics", "shop/dev/web", "--window", "15m", "--json"]);
    expect(code).toBe(0);
    const series = JSON.parse(stdout) as MetricPoint[];
    expect(series.map((point) => point.requestsPerSecond)).toEqual(burst.map((values) => values.requests));
    expect(series.map((point) => Date.parse(point.at))).toEqual(series.map((point) => Date.parse(point.at)).sort((a, b) => a - b));
  });

  it("says when a window has no sample", async () => {
    const { stdout, code } = await h.cli(["metrics", "shop/dev/idle", "--window", "7d"]);
    expect(code).toBe(0);
    expect(stdout).toBe("shop/dev/idle: no sample in the last 7d (not running, or its engine does not report metrics)\n");
  });

  it("refuses a window the API does not have, listing those it has", async () => {
    const result = await h.cli(["metrics", "shop/dev/web", "--window", "2h"]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/'2h' is invalid\. Allowed choices are 15m, 1h, 24h, 7d\./);
  });
});
