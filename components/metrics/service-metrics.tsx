"use client";

import "@mantine/charts/styles.css";
import { LineChart } from "@mantine/charts";
import { Card, Group, SegmentedControl, SimpleGrid, Stack, Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { AppRouter } from "../../server/api/root";
import type { inferRouterOutputs } from "@trpc/server";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";

type MetricPoint = inferRouterOutputs<AppRouter>["metrics"]["series"][number];
const WINDOWS = [
  { value: "15m", label: "15 min" },
  { value: "1h", label: "1 hour" },
  { value: "24h", label: "24 hours" },
  { value: "7d", label: "7 days" },
] as const;
type Window = (typeof WINDOWS)[number]["value"];

const MiB = 1024 * 1024;
const round = (value: number | null, digits = 1) => (value === null ? null : Math.round(value * 10 ** digits) / 10 ** digits);

function label(at: string, window: Window): string {
  const date = new Date(at);
  return window === "7d"
    ? date.toLocaleString(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" })
    : date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", ...(window === "15m" ? { second: "2-digit" } : {}) });
}

function Chart({
  title,
  figure,
  data,
  series,
  unit,
}: {
  title: string;
  figure: string;
  data: Record<string, unknown>[];
  series: { name: string; label: string; color: string }[];
  unit: string;
}) {
  return (
    <Card withBorder padding="md" aria-label={`${title} chart`}>
      <Group justify="space-between" mb="xs">
        <Text fw={600} fz="sm">
          {title}
        </Text>
        <Text fz="sm" c="dimmed" data-testid={`metric-${title.toLowerCase().replace(/\W+/g, "-")}`}>
          {figure}
        </Text>
      </Group>
      <LineChart
        h={160}
        data={data}
        dataKey="time"
        series={series}
        curveType="linear"
        withDots={false}
        unit={unit}
        withLegend={series.length > 1}
        connectNulls
        tickLine="none"
        gridAxis="y"
      />
    </Card>
  );
}

/**
 * A service's metrics over a chosen window: CPU, memory (against its limit), requests and 5xx
 * errors per second, latency percentiles. Refreshed every 5 seconds from the stored samples.
 */
export function ServiceMetrics({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const [window, setWindow] = useState<Window>("15m");
  const series = useQuery(trpc.metrics.series.queryOptions({ serviceId, window }, { refetchInterval: 5_000 }));
  const points: MetricPoint[] = series.data ?? [];
  const last = points.at(-1);
  const data = points.map((point) => ({
    time: label(point.at, window),
    cpu: round(point.cpuPercent),
    memory: round(point.memoryBytes / MiB),
    limit: point.memoryLimitBytes ? round(point.memoryLimitBytes / MiB) : null,
    requests: round(point.requestsPerSecond, 2),
    errors: round(point.errorsPerSecond, 2),
    p50: round(point.p50Ms),
    p95: round(point.p95Ms),
    p99: round(point.p99Ms),
  }));
  const hasLimit = points.some((point) => point.memoryLimitBytes);

  return (
    <Section title="Metrics" description="Sampled every few seconds from the running release and the router.">
      <Stack gap="sm">
        <SegmentedControl
          aria-label="Metrics window"
          value={window}
          onChange={(value) => setWindow(value as Window)}
          data={WINDOWS.map((w) => ({ value: w.value, label: w.label }))}
          w="fit-content"
        />
        {points.length === 0 ? (
          <Card withBorder padding="lg">
            <Text c="dimmed" fz="sm">
              {series.isPending ? "Loading…" : "No samples in this window: the service is not running, or its engine does not report metrics yet."}
            </Text>
          </Card>
        ) : (
          <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm">
            <Chart title="CPU" unit="%" figure={`${last?.cpuPercent.toFixed(1)}%`} data={data} series={[{ name: "cpu", label: "CPU", color: "indigo.6" }]} />
            <Chart
              title="Memory"
              unit=" MiB"
              figure={`${((last?.memoryBytes ?? 0) / MiB).toFixed(1)} MiB${last?.memoryLimitBytes ? ` of ${(last.memoryLimitBytes / MiB).toFixed(0)} MiB` : ""}`}
              data={data}
              series={[{ name: "memory", label: "Memory", color: "teal.6" }, ...(hasLimit ? [{ name: "limit", label: "Limit", color: "red.5" }] : [])]}
            />
            <Chart
              title="Requests"
              unit="/s"
              figure={`${last?.requestsPerSecond.toFixed(2)}/s, ${last?.errorsPerSecond.toFixed(2)} errors/s`}
              data={data}
              series={[
                { name: "requests", label: "Requests/s", color: "blue.6" },
                { name: "errors", label: "5xx/s", color: "red.6" },
              ]}
            />
            <Chart
              title="Latency"
              unit=" ms"
              figure={last?.p99Ms != null ? `p99 ${last.p99Ms.toFixed(1)} ms` : "no requests"}
              data={data}
              series={[
                { name: "p50", label: "p50", color: "green.6" },
                { name: "p95", label: "p95", color: "yellow.6" },
                { name: "p99", label: "p99", color: "red.6" },
              ]}
            />
          </SimpleGrid>
        )}
      </Stack>
    </Section>
  );
}
