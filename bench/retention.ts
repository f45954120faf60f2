import { sql } from "drizzle-orm";
import { createCaller } from "../server/api/root";
import { environments, projects, services as servicesTable } from "../server/db/schema";
import { MINUTE } from "../server/metrics/metrics";
import { applyRetention, defaultRetention } from "../server/retention/retention";
import { percentile } from "./stats";
import type { startBenchControlPlane } from "./control-plane";

type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;

/**
 * The rates a month of a 100-service organization is filled at, before scaling: a moderately
 * chatty web service writes a line every 5 seconds on average (requests, workers, errors);
 * engines sample metrics every 5 seconds (SLIPWAY_METRICS_SECONDS), kept raw 24 hours and as
 * minute averages after.
 */
export const monthOfRates = { services: 100, days: 31, logLinesPerSecond: 0.2, rawSampleSeconds: 5, lineBytes: 120 };

const TABLES = ["log_lines", "metric_samples"] as const;
const QUERY_RUNS = 30;

/**
 * Fills a month of runtime logs and metrics (at the rates above divided by `scale`: the same
 * month, rows spaced `scale` times further apart), then measures the tables' sizes and the
 * queries of the log and metrics views before and after retention with the default policy.
 */
export async function measureRetention(plane: ControlPlane, scale: number) {
  const { db } = plane.services;
  const now = new Date();
  const [project] = await db.insert(projects).values({ organizationId: plane.org.organizationId, name: "retention-bench" }).returning();
  const [environment] = await db
    .insert(environments)
    .values({ organizationId: plane.org.organizationId, projectId: project!.id, name: "production", clusterId: plane.org.clusterId })
    .returning();
  const rows = await db
    .insert(servicesTable)
    .values(
      Array.from({ length: monthOfRates.services }, (_, i) => ({
        organizationId: plane.org.organizationId,
        environmentId: environment!.id,
        name: `svc-${i}`,
        kind: "APPLICATION" as const,
        config: {} as never,
      })),
    )
    .returning({ id: servicesTable.id });
  const ids = `{${rows.map((row) => row.id).join(",")}}`;
  const monthSeconds = monthOfRates.days * 86_400;
  const lineEvery = scale / monthOfRates.logLinesPerSecond;
  const filling = performance.now();
  await db.execute(sql`
    insert into log_lines (organization_id, stream, seq, service_id, fd, text, at)
    select ${plane.org.organizationId}::uuid, 'service:' || s.id, n, s.id, 'stdout',
      rpad('GET /api/orders/' || n || ' 200 ', ${monthOfRates.lineBytes}, 'x'),
      ${now.toISOString()}::timestamptz - make_interval(secs => ${monthSeconds} - n * ${lineEvery})
    from unnest(${ids}::uuid[]) s(id), generate_series(1, ${Math.floor(monthSeconds / lineEvery)}) n`);
  const sample = (resolution: number, every: number, count: number) => sql`
    insert into metric_samples (service_id, resolution, at, cpu_percent, memory_bytes, memory_limit_bytes, restarts,
      requests_per_second, errors_per_second, p50_ms, p95_ms, p99_ms)
    select s.id, ${resolution}, ${now.toISOString()}::timestamptz - make_interval(secs => n * ${every}),
      random() * 100, (200 + random() * 300) * 1048576, 536870912, 0, random() * 50, random(), 5 + random() * 10, 20 + random() * 30, 50 + random() * 100
    from unnest(${ids}::uuid[]) s(id), generate_series(1, ${count}) n`;
  await db.execute(sample(0, monthOfRates.rawSampleSeconds * scale, Math.floor(86_400 / (monthOfRates.rawSampleSeconds * scale))));
  await db.execute(sample(MINUTE, MINUTE * scale, Math.floor(monthSeconds / (MINUTE * scale))));
  const fillMs = performance.now() - filling;
  await db.execute(sql`vacuum analyze log_lines, metric_samples`);

  const api = createCaller({ services: plane.services, actor: plane.org.as("VIEWER") });
  const serviceId = rows[0]!.id;
  const hourAgo = new Date(now.getTime() - 3_600_000).toISOString();
  const queries = {
    "logs (last 500 lines)": () => api.deployments.logs({ serviceId, tail: 500 }),
    "logs (last hour, grep)": () => api.deployments.logs({ serviceId, since: hourAgo, grep: "orders/1" }),
    "metrics 1h": () => api.metrics.series({ serviceId, window: "1h" }),
    "metrics 7d": () => api.metrics.series({ serviceId, window: "7d" }),
  };
  const before = { sizes: await tableSizes(plane), latency: await latencies(queries) };
  const started = performance.now();
  const outcome = await applyRetention(db, defaultRetention, now);
  const retentionMs = performance.now() - started;
  await db.execute(sql`vacuum analyze log_lines, metric_samples`);
  const after = { sizes: await tableSizes(plane), latency: await latencies(queries) };
  return { scale, fillMs, before, after, retentionMs, outcome };
}

async function tableSizes(plane: ControlPlane) {
  const sizes: Record<string, { rows: number; bytes: number }> = {};
  for (const table of TABLES) {
    const { rows } = await plane.services.db.execute<{ rows: number; bytes: string }>(
      sql`select count(*)::int as rows, pg_total_relation_size(${table}::regclass)::text as bytes from ${sql.identifier(table)}`,
    );
    sizes[table] = { rows: rows[0]!.rows, bytes: Number(rows[0]!.bytes) };
  }
  return sizes;
}

async function latencies(queries: Record<string, () => Promise<unknown>>) {
  const result: Record<string, { p50: number; p99: number }> = {};
  for (const [name, query] of Object.entries(queries)) {
    const times: number[] = [];
    for (let i = 0; i < QUERY_RUNS; i++) {
      const started = performance.now();
      await query();
      times.push(performance.now() - started);
    }
    result[name] = { p50: percentile(times, 50), p99: percentile(times, 99) };
  }
  return result;
}
