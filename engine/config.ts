import path from "node:path";
import { z } from "zod";
import { type NodeDefault, parseNodeSpec } from "./runtime/toolchains/node";

/** The engine's configuration, validated once at boot. It needs no database: only the control plane's URL and its cluster token. */
const schema = z.object({
  SLIPWAY_ENGINE_URL: z.string().url({ message: "set SLIPWAY_ENGINE_URL (or --url) to the control plane's URL" }),
  SLIPWAY_ENGINE_TOKEN: z.string().min(1, "set SLIPWAY_ENGINE_TOKEN (or --token) to the cluster's engine token"),
  SLIPWAY_ENGINE_HOME: z.string().default(".slipway/engine"),
  SLIPWAY_ROUTER_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  SLIPWAY_ROUTER_HOST: z.string().default("0.0.0.0"),
  /** The router's HTTPS port for custom domains with certificates (issue 16); 0 (the default) serves no HTTPS. `npm start` sets it. */
  SLIPWAY_ROUTER_HTTPS_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** Must stay well under the control plane's lease (SLIPWAY_LEASE_SECONDS, 30 by default). */
  SLIPWAY_HEARTBEAT_SECONDS: z.coerce.number().min(0.1).max(60).default(5),
  /** How often the releases are sampled for metrics (CPU, memory, traffic); 0 turns metrics off. */
  SLIPWAY_METRICS_SECONDS: z.coerce.number().min(0).max(3600).default(5),
  /** How often the engine reports the files it keeps (leftovers of deleted services are removed in answer). */
  SLIPWAY_INVENTORY_SECONDS: z.coerce.number().min(1).max(86_400).default(300),
  /** The bound on the events and log lines the engine keeps on disk while the control plane cannot store them; the oldest log lines go first. */
  SLIPWAY_ENGINE_OUTBOX_MB: z.coerce.number().min(1).max(1_000_000).default(64),
  /** The most a service's build cache may hold (local runtime): one over it after a build is dropped. */
  SLIPWAY_BUILD_CACHE_MB: z.coerce.number({ message: "SLIPWAY_BUILD_CACHE_MB must be a number of megabytes" }).min(0).max(1_000_000).default(1024),
  /** `local`: releases are processes on this host; `docker`: containers through the Docker Engine API at SLIPWAY_DOCKER_HOST. */
  SLIPWAY_ENGINE_RUNTIME: z.enum(["local", "docker"], { message: "SLIPWAY_ENGINE_RUNTIME must be local or docker" }).default("local"),
  /** Docker's socket by default; Podman's compatible service: `podman system service --time=0 unix:///run/podman/podman.sock`. */
  SLIPWAY_DOCKER_HOST: z
    .string()
    .regex(/^(unix:\/\/\/\S+|tcp:\/\/[^\s/]+:\d+)$/, "SLIPWAY_DOCKER_HOST must be unix:///path/to/docker.sock or tcp://host:port")
    .default("unix:///var/run/docker.sock"),
  /**
   * Whether this engine clones `file://` URLs and absolute paths, i.e. repositories on its own
   * host. Off by default: the host's owner decides, not the control plane (whose cluster setting
   * is checked too). `npm start` turns it on for its embedded engine.
   */
  SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES: z.enum(["0", "1"], { message: "SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES must be 0 or 1" }).default("0"),
  /** The npm registry the engine installs toolchains from (Node, npm): a mirror where registry.npmjs.org is out of reach. */
  SLIPWAY_NPM_REGISTRY: z
    .string()
    .url({ message: "SLIPWAY_NPM_REGISTRY must be the URL of an npm registry" })
    .regex(/^https?:\/\//, "SLIPWAY_NPM_REGISTRY must be an http:// or https:// URL")
    .default("https://registry.npmjs.org"),
  /** The Node of apps that name no version: `lts`, a version or range, or `system` (the Node on the engine's PATH). */
  SLIPWAY_NODE_VERSION: z.string().trim().min(1).default("lts"),
  LOG_LEVEL: z.string().default("info"),
  SLIPWAY_LOG_PRETTY: z.enum(["0", "1"]).optional(),
});

export type EngineConfig = {
  url: string;
  token: string;
  home: string;
  routerPort: number;
  routerHost: string;
  routerHttpsPort: number | null;
  heartbeatMs: number;
  metricsMs: number;
  inventoryMs: number;
  outboxMaxBytes: number;
  buildCacheMb: number;
  runtime: "local" | "docker";
  dockerHost: string;
  allowLocalRepositories: boolean;
  npmRegistry: string;
  nodeDefault: NodeDefault;
  /** The PIP_* settings of the engine's environment that say where Python packages come from, passed to Python installs. */
  pip: Record<string, string>;
  logLevel: string;
  pretty: boolean;
};

export function loadEngineConfig(source: Record<string, string | undefined>): EngineConfig {
  const parsed = schema.safeParse(source);
  if (!parsed.success) throw new Error(`Invalid engine configuration: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  const env = parsed.data;
  return {
    npmRegistry: env.SLIPWAY_NPM_REGISTRY,
    nodeDefault: parseNodeDefault(env.SLIPWAY_NODE_VERSION),
    pip: pipSettings(source),
    url: env.SLIPWAY_ENGINE_URL,
    token: env.SLIPWAY_ENGINE_TOKEN,
    home: path.resolve(env.SLIPWAY_ENGINE_HOME),
    routerPort: env.SLIPWAY_ROUTER_PORT,
    routerHost: env.SLIPWAY_ROUTER_HOST,
    routerHttpsPort: env.SLIPWAY_ROUTER_HTTPS_PORT || null,
    heartbeatMs: env.SLIPWAY_HEARTBEAT_SECONDS * 1000,
    metricsMs: env.SLIPWAY_METRICS_SECONDS * 1000,
    inventoryMs: env.SLIPWAY_INVENTORY_SECONDS * 1000,
    outboxMaxBytes: Math.round(env.SLIPWAY_ENGINE_OUTBOX_MB * 1024 * 1024),
    buildCacheMb: env.SLIPWAY_BUILD_CACHE_MB,
    runtime: env.SLIPWAY_ENGINE_RUNTIME,
    dockerHost: env.SLIPWAY_DOCKER_HOST,
    allowLocalRepositories: env.SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES === "1",
    logLevel: env.LOG_LEVEL,
    pretty: env.SLIPWAY_LOG_PRETTY === "1",
  };
}

/**
 * pip's settings of where packages come from and how it reaches them
 * (https://pip.pypa.io/en/stable/topics/configuration/#environment-variables): a private mirror
 * where pypi.org is out of reach. Only these: nothing else of the engine's environment reaches a build.
 */
export const PIP_SETTINGS = [
  "PIP_INDEX_URL",
  "PIP_EXTRA_INDEX_URL",
  "PIP_TRUSTED_HOST",
  "PIP_FIND_LINKS",
  "PIP_NO_INDEX",
  "PIP_CERT",
  "PIP_CLIENT_CERT",
  "PIP_PROXY",
  "PIP_TIMEOUT",
  "PIP_RETRIES",
] as const;

export function pipSettings(source: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(PIP_SETTINGS.flatMap((key) => (source[key] ? [[key, source[key]]] : [])));
}

/** SLIPWAY_NODE_VERSION: `system`, or a spec as an .nvmrc holds one (`lts`, `22`, `>=20 <23`). */
export function parseNodeDefault(value: string): NodeDefault {
  if (value.trim().toLowerCase() === "system") return "system";
  const parsed = parseNodeSpec(value, "SLIPWAY_NODE_VERSION");
  if (!parsed.ok) throw new Error(`Invalid engine configuration: ${parsed.reason} (lts, a version or range, or system)`);
  return parsed.request;
}
