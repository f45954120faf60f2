import { z } from "zod";

/** The whole routing table the engine PUTs to the router; the router persists it as routes.json. */
export const route = z.object({
  serviceId: z.string(),
  serviceName: z.string(),
  /** Hostnames, lowercase, without port. */
  hosts: z.array(z.string()),
  /** The live release; null while the service is stopped (the router answers 503). */
  upstream: z.object({ host: z.string(), port: z.number().int().min(1).max(65535) }).nullable(),
  /**
   * The service sleeps (issue 16, part 3): its requests are held, and the engine asked to wake
   * it, instead of answered 503; they are served once a table gives it an upstream again.
   */
  sleeping: z.boolean().optional(),
  /**
   * The service has never had a release go live on this engine (its first deployment is under
   * way, or failed): the router answers 503 saying so, not 404 as for a host no service has.
   */
  neverDeployed: z.boolean().optional(),
});
export type Route = z.infer<typeof route>;

export const routesTable = z.object({ routes: z.array(route) });
export type RoutesTable = z.infer<typeof routesTable>;

export const serviceCounters = z.object({
  requests: z.number(),
  errors: z.number(),
  latencyMsSum: z.number(),
  /** Finished requests per latency bucket (bounds: LATENCY_BUCKETS_MS of the protocol, plus one open-ended); absent from older routers. */
  latencyBuckets: z.array(z.number()).optional(),
  /** When the service's latest request (or websocket) arrived, in epoch ms: what sleep counts idleness from; absent from older routers. */
  lastRequestAt: z.number().nullable().optional(),
});
export type ServiceCounters = z.infer<typeof serviceCounters>;

export const routerStats = z.object({
  /** Open HTTP requests per upstream "host:port": what draining waits on. */
  inFlight: z.record(z.string(), z.number()),
  /** Open websocket connections per upstream. */
  websockets: z.record(z.string(), z.number()),
  services: z.record(z.string(), serviceCounters),
  /** Requests held per sleeping service, waiting for its wake. */
  held: z.record(z.string(), z.number()).optional(),
});
export type RouterStats = z.infer<typeof routerStats>;

export const routerHealth = z.object({
  pid: z.number(),
  port: z.number(),
  host: z.string(),
  httpsPort: z.number().nullable().default(null),
  /** How long a sleeping service's requests wait for its wake, and when a browser gets the waiting page (absent from older routers). */
  wakeTimeoutMs: z.number().optional(),
  wakePageAfterMs: z.number().optional(),
  /** Connections it holds open at once (absent from older routers). */
  maxConnections: z.number().optional(),
});

export function upstreamKey(upstream: { host: string; port: number }): string {
  return `${upstream.host}:${upstream.port}`;
}

/** The hostname of a Host header: lowercase, port stripped (IPv6 literals keep their brackets). */
export function hostnameOf(hostHeader: string | undefined): string {
  if (!hostHeader) return "";
  const host = hostHeader.trim().toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  return host.replace(/:\d*$/, "").replace(/\.$/, "");
}

/** What the router answers the engine's long poll for wakes with: the sleeping services that have requests waiting. */
export const wakeRequests = z.object({ serviceIds: z.array(z.string()) });

/** A service a deployment named: its hostnames, whether or not a release of it ever went live. */
export type KnownService = { serviceId: string; name: string; domains: string[] };

/**
 * The routes table for the services an engine runs: a stopped service routes to nothing (503), a
 * sleeping one holds its requests; a known service without a release routes to nothing either,
 * marked as never deployed.
 */
export function routesTableOf(
  states: Iterable<{ serviceId: string; name: string; domains: string[]; status: string; current: { port: number } | null }>,
  known: Iterable<KnownService> = [],
): RoutesTable {
  const running = [...states];
  const released = new Set(running.map((state) => state.serviceId));
  const servedHosts = new Set(running.flatMap((state) => state.domains.map((host) => host.toLowerCase())));
  return {
    routes: [
      ...running.map((state) => ({
        serviceId: state.serviceId,
        serviceName: state.name,
        hosts: state.domains,
        upstream: state.current && state.status !== "stopped" && state.status !== "sleeping" ? { host: "127.0.0.1", port: state.current.port } : null,
        ...(state.current && state.status === "sleeping" ? { sleeping: true } : {}),
      })),
      // A host a released service has is its: a known service that once had it (a service of the same
      // name deleted and created again, whose first deployment failed) must not take its requests.
      ...[...known]
        .filter((service) => !released.has(service.serviceId))
        .map((service) => ({ service, hosts: service.domains.filter((host) => !servedHosts.has(host)) }))
        .filter(({ hosts }) => hosts.length > 0)
        .map(({ service, hosts }) => ({ serviceId: service.serviceId, serviceName: service.name, hosts, upstream: null, neverDeployed: true })),
    ],
  };
}
