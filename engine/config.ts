import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { envNumber } from "./protocol/env-number";
import { DEFAULT_MAX_CONNECTIONS } from "./router/connection-limit";
import type { KubernetesSettings } from "./runtime/kubernetes/settings";
import { type NodeDefault, parseNodeSpec } from "./runtime/toolchains/node";

/** The engine's configuration, validated once at boot. It needs no database: only the control plane's URL and its cluster token. */
const schema = z.object({
  SLIPWAY_ENGINE_URL: z.string().url({ message: "set SLIPWAY_ENGINE_URL (or --url) to the control plane's URL" }),
  SLIPWAY_ENGINE_TOKEN: z.string().min(1, "set SLIPWAY_ENGINE_TOKEN (or --token) to the cluster's engine token"),
  SLIPWAY_ENGINE_HOME: z.string().default(".slipway/engine"),
  SLIPWAY_ROUTER_PORT: envNumber(z.number().int().min(0).max(65535)).default(8080),
  SLIPWAY_ROUTER_HOST: z.string().default("0.0.0.0"),
  /** The router's HTTPS port for custom domains with certificates (issue 16); 0 (the default) serves no HTTPS. `npm start` sets it. */
  SLIPWAY_ROUTER_HTTPS_PORT: envNumber(z.number().int().min(0).max(65535)).default(0),
  /** Connections the router holds open at once, HTTP and HTTPS together; past it, 503 (engine/router/connection-limit.ts). */
  SLIPWAY_ROUTER_MAX_CONNECTIONS: envNumber(
    z
      .number()
      .int("SLIPWAY_ROUTER_MAX_CONNECTIONS must be a whole number, 1 or more")
      .min(1, "SLIPWAY_ROUTER_MAX_CONNECTIONS must be a whole number, 1 or more"),
    "SLIPWAY_ROUTER_MAX_CONNECTIONS must be a whole number, 1 or more",
  ).default(DEFAULT_MAX_CONNECTIONS),
  /** How long the router holds a sleeping service's requests while it wakes (issue 16); past it, 503 with Retry-After. */
  SLIPWAY_WAKE_TIMEOUT_MS: envNumber(z.number().int().min(1_000).max(600_000)).default(60_000),
  /** When a browser (a request accepting text/html) waiting for a wake gets a short waiting page that reloads itself; API clients just wait. */
  SLIPWAY_WAKE_PAGE_AFTER_MS: envNumber(z.number().int().min(0).max(600_000)).default(3_000),
  /**
   * The length of a minute of `sleepAfterMinutes` (local runtime): 60 000 ms. Shorter only to see
   * sleep when idle happen in seconds, as the end-to-end journeys do; never on a real engine.
   */
  SLIPWAY_SLEEP_MINUTE_MS: envNumber(
    z
      .number({ message: "SLIPWAY_SLEEP_MINUTE_MS must be a number of milliseconds" })
      .int({ message: "SLIPWAY_SLEEP_MINUTE_MS must be a whole number of milliseconds" })
      .min(100, "SLIPWAY_SLEEP_MINUTE_MS is at least 100")
      .max(60_000, "SLIPWAY_SLEEP_MINUTE_MS is at most 60000"),
    "SLIPWAY_SLEEP_MINUTE_MS must be a number of milliseconds",
  ).default(60_000),
  /** Must stay well under the control plane's lease (SLIPWAY_LEASE_SECONDS, 30 by default). */
  SLIPWAY_HEARTBEAT_SECONDS: envNumber(z.number().min(0.1).max(60)).default(5),
  /** How often the releases are sampled for metrics (CPU, memory, traffic); 0 turns metrics off. */
  SLIPWAY_METRICS_SECONDS: envNumber(z.number().min(0).max(3600)).default(5),
  /** How often the engine reports the files it keeps (leftovers of deleted services are removed in answer). */
  SLIPWAY_INVENTORY_SECONDS: envNumber(z.number().min(1).max(86_400)).default(300),
  /** The bound on the events and log lines the engine keeps on disk while the control plane cannot store them; the oldest log lines go first. */
  SLIPWAY_ENGINE_OUTBOX_MB: envNumber(z.number().min(1).max(1_000_000)).default(64),
  /** The most a service's build cache may hold (local runtime): one over it after a build is dropped. */
  SLIPWAY_BUILD_CACHE_MB: envNumber(z.number().min(0).max(1_000_000), "SLIPWAY_BUILD_CACHE_MB must be a number of megabytes").default(1024),
  /** What each runtime log file of a live release keeps of the lines the control plane stored (local runtime: engine/runtime/local/release-disk.ts). */
  SLIPWAY_RUNTIME_LOG_KEEP_MB: envNumber(z.number().min(1).max(1_000_000), "SLIPWAY_RUNTIME_LOG_KEEP_MB must be a number of megabytes, 1 or more").default(16),
  /** Releases of a service kept on disk besides those in use, their logs with them (local runtime). */
  SLIPWAY_RELEASES_KEPT: envNumber(
    z.number().int("SLIPWAY_RELEASES_KEPT must be a whole number, 1 or more").min(1, "SLIPWAY_RELEASES_KEPT must be a whole number, 1 or more").max(1000),
    "SLIPWAY_RELEASES_KEPT must be a whole number, 1 or more",
  ).default(3),
  /** How many services the engine deploys at once (issue 16): its host's cores by default, 1 to deploy one by one. */
  SLIPWAY_ENGINE_CONCURRENCY: envNumber(
    z
      .number({ message: "SLIPWAY_ENGINE_CONCURRENCY must be a whole number of services, 1 or more" })
      .int({ message: "SLIPWAY_ENGINE_CONCURRENCY must be a whole number of services, 1 or more" })
      .min(1, "SLIPWAY_ENGINE_CONCURRENCY must be a whole number of services, 1 or more")
      .max(256, "SLIPWAY_ENGINE_CONCURRENCY is at most 256"),
    "SLIPWAY_ENGINE_CONCURRENCY must be a whole number of services, 1 or more",
  ).default(os.availableParallelism()),
  /**
   * `local`: releases are processes on this host; `docker`: containers through the Docker Engine
   * API at SLIPWAY_DOCKER_HOST; `kubernetes`: objects of a Kubernetes cluster (SLIPWAY_KUBE_*).
   */
  SLIPWAY_ENGINE_RUNTIME: z.enum(["local", "docker", "kubernetes"], { message: "SLIPWAY_ENGINE_RUNTIME must be local, docker or kubernetes" }).default("local"),
  /** The kubeconfig context of an engine beside its cluster (KUBECONFIG or ~/.kube/config); unset inside the cluster, whose service account it uses. */
  SLIPWAY_KUBE_CONTEXT: z.string().min(1).optional(),
  /** `ingress` (an Ingress of SLIPWAY_KUBE_INGRESS_CLASS, the cluster's default class when unset) or `gateway:<namespace>/<name>` (an HTTPRoute on that Gateway). */
  SLIPWAY_KUBE_ROUTING: z
    .string()
    .regex(
      /^(ingress|gateway:[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/,
      "SLIPWAY_KUBE_ROUTING must be ingress or gateway:<namespace>/<name>",
    )
    .default("ingress"),
  SLIPWAY_KUBE_INGRESS_CLASS: z.string().min(1).optional(),
  /** The storage class of databases' volumes; the cluster's default when unset. */
  SLIPWAY_KUBE_STORAGE_CLASS: z.string().min(1).optional(),
  SLIPWAY_KUBE_DATABASE_STORAGE: z
    .string()
    .regex(/^\d+(Mi|Gi|Ti)$/, "SLIPWAY_KUBE_DATABASE_STORAGE must be a size such as 10Gi")
    .default("10Gi"),
  /** Where images built from git are pushed (`registry.example.com/slipway`); builds are refused without one. */
  SLIPWAY_KUBE_REGISTRY: z.string().min(1).optional(),
  /** A kubernetes.io/dockerconfigjson Secret in the engine's namespace with the registry's push credentials. */
  SLIPWAY_KUBE_REGISTRY_SECRET: z.string().min(1).optional(),
  SLIPWAY_KUBE_BUILDER: z.enum(["kaniko", "buildkit"], { message: "SLIPWAY_KUBE_BUILDER must be kaniko or buildkit" }).default("kaniko"),
  /** The engine's own namespace (its build Jobs run there); the downward API sets it in the install manifests. */
  SLIPWAY_KUBE_NAMESPACE: z.string().min(1).default("slipway-system"),
  /** The kubeconfig of an engine beside its cluster, as kubectl reads it (one file). */
  KUBECONFIG: z.string().min(1).optional(),
  HOME: z.string().optional(),
  /** Set by Kubernetes in every pod: the engine runs inside a cluster. */
  KUBERNETES_SERVICE_HOST: z.string().optional(),
  /** Docker's socket by default; Podman's compatible service: `podman system service --time=0 unix:///run/podman/podman.sock`. */
  SLIPWAY_DOCKER_HOST: z
    .string()
    .regex(/^(unix:\/\/\/\S+|tcp:\/\/[^\s/]+:\d+)$/, "SLIPWAY_DOCKER_HOST must be unix:///path/to/docker.sock or tcp://host:port")
    .default("unix:///var/run/docker.sock"),
  /**
   * The image a docker cluster builds apps without a Dockerfile from (it needs glibc and /bin/sh;
   * Node and the package manager come from the engine). Unset: Debian's bookworm-slim, or Python's
   * slim image of the app's version for a Python app.
   */
  SLIPWAY_DOCKER_BUILD_IMAGE: z.string().trim().min(1).optional(),
  /** The network of those builds' steps: `host` where the npm registry or package index is a mirror on the host's loopback. */
  SLIPWAY_DOCKER_BUILD_NETWORK: z.string().trim().min(1).optional(),
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
    // fetch() refuses a URL with credentials, and the URL is shown in build logs.
    .refine((url) => !URL.canParse(url) || (new URL(url).username === "" && new URL(url).password === ""), {
      message: "SLIPWAY_NPM_REGISTRY must not carry credentials (user:token@): the engine needs a registry it can read anonymously",
    })
    .default("https://registry.npmjs.org"),
  /** The Node of apps that name no version: `lts`, a version or range, or `system` (the Node on the engine's PATH). */
  SLIPWAY_NODE_VERSION: z.string().trim().min(1).default("lts"),
  /**
   * When set, the engine answers liveness and readiness probes on this port (GET
   * /api/health/live, and /api/health/ready: 200 while connected to the control plane).
   */
  SLIPWAY_ENGINE_HEALTH_PORT: envNumber(z.number().int().min(1).max(65535)).optional(),
  SLIPWAY_ENGINE_HEALTH_HOST: z.string().default("127.0.0.1"),
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
  routerMaxConnections: number;
  /** Sleep when idle: how long requests wait for a wake, and when browsers get the waiting page. */
  wake: { timeoutMs: number; pageAfterMs: number };
  sleepMinuteMs: number;
  heartbeatMs: number;
  metricsMs: number;
  inventoryMs: number;
  outboxMaxBytes: number;
  buildCacheMb: number;
  runtimeLogKeepMb: number;
  releasesKept: number;
  concurrency: number;
  runtime: "local" | "docker" | "kubernetes";
  dockerHost: string;
  dockerBuildImage?: string;
  dockerBuildNetwork?: string;
  kubernetes: { inCluster: boolean; kubeconfig: string; context?: string; settings: KubernetesSettings };
  allowLocalRepositories: boolean;
  npmRegistry: string;
  nodeDefault: NodeDefault;
  /** The PIP_* settings of the engine's environment that say where Python packages come from, passed to Python installs. */
  pip: Record<string, string>;
  /** Credentials inside pip's index URLs and the proxy's URL builds are given: masked in every deployment's output. */
  configSecrets: string[];
  logLevel: string;
  pretty: boolean;
  health: { port: number; host: string } | null;
};

export function loadEngineConfig(source: Record<string, string | undefined>): EngineConfig {
  const parsed = schema.safeParse(source);
  if (!parsed.success) throw new Error(`Invalid engine configuration: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  const env = parsed.data;
  return {
    npmRegistry: env.SLIPWAY_NPM_REGISTRY,
    nodeDefault: parseNodeDefault(env.SLIPWAY_NODE_VERSION),
    pip: pipSettings(source),
    configSecrets: urlCredentials([...Object.values(pipSettings(source)), ...proxyUrls(source)]),
    url: env.SLIPWAY_ENGINE_URL,
    token: env.SLIPWAY_ENGINE_TOKEN,
    home: path.resolve(env.SLIPWAY_ENGINE_HOME),
    routerPort: env.SLIPWAY_ROUTER_PORT,
    routerHost: env.SLIPWAY_ROUTER_HOST,
    routerHttpsPort: env.SLIPWAY_ROUTER_HTTPS_PORT || null,
    routerMaxConnections: env.SLIPWAY_ROUTER_MAX_CONNECTIONS,
    wake: { timeoutMs: env.SLIPWAY_WAKE_TIMEOUT_MS, pageAfterMs: env.SLIPWAY_WAKE_PAGE_AFTER_MS },
    sleepMinuteMs: env.SLIPWAY_SLEEP_MINUTE_MS,
    heartbeatMs: env.SLIPWAY_HEARTBEAT_SECONDS * 1000,
    metricsMs: env.SLIPWAY_METRICS_SECONDS * 1000,
    inventoryMs: env.SLIPWAY_INVENTORY_SECONDS * 1000,
    outboxMaxBytes: Math.round(env.SLIPWAY_ENGINE_OUTBOX_MB * 1024 * 1024),
    buildCacheMb: env.SLIPWAY_BUILD_CACHE_MB,
    runtimeLogKeepMb: env.SLIPWAY_RUNTIME_LOG_KEEP_MB,
    releasesKept: env.SLIPWAY_RELEASES_KEPT,
    concurrency: env.SLIPWAY_ENGINE_CONCURRENCY,
    runtime: env.SLIPWAY_ENGINE_RUNTIME,
    dockerHost: env.SLIPWAY_DOCKER_HOST,
    ...(env.SLIPWAY_DOCKER_BUILD_IMAGE ? { dockerBuildImage: env.SLIPWAY_DOCKER_BUILD_IMAGE } : {}),
    ...(env.SLIPWAY_DOCKER_BUILD_NETWORK ? { dockerBuildNetwork: env.SLIPWAY_DOCKER_BUILD_NETWORK } : {}),
    kubernetes: {
      inCluster: Boolean(env.KUBERNETES_SERVICE_HOST) && !env.SLIPWAY_KUBE_CONTEXT,
      kubeconfig: env.KUBECONFIG ?? path.join(env.HOME ?? "/root", ".kube", "config"),
      ...(env.SLIPWAY_KUBE_CONTEXT ? { context: env.SLIPWAY_KUBE_CONTEXT } : {}),
      settings: {
        routing:
          env.SLIPWAY_KUBE_ROUTING === "ingress"
            ? { kind: "ingress", className: env.SLIPWAY_KUBE_INGRESS_CLASS ?? null }
            : { kind: "gateway", namespace: env.SLIPWAY_KUBE_ROUTING.slice(8).split("/")[0]!, name: env.SLIPWAY_KUBE_ROUTING.split("/")[1]! },
        storageClass: env.SLIPWAY_KUBE_STORAGE_CLASS ?? null,
        databaseStorage: env.SLIPWAY_KUBE_DATABASE_STORAGE,
        registry: env.SLIPWAY_KUBE_REGISTRY ?? null,
        registrySecret: env.SLIPWAY_KUBE_REGISTRY_SECRET ?? null,
        builder: env.SLIPWAY_KUBE_BUILDER,
        engineNamespace: env.SLIPWAY_KUBE_NAMESPACE,
      },
    },
    allowLocalRepositories: env.SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES === "1",
    logLevel: env.LOG_LEVEL,
    pretty: env.SLIPWAY_LOG_PRETTY === "1",
    health: env.SLIPWAY_ENGINE_HEALTH_PORT === undefined ? null : { port: env.SLIPWAY_ENGINE_HEALTH_PORT, host: env.SLIPWAY_ENGINE_HEALTH_HOST },
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

/**
 * The outbound proxy of the engine's environment, which builds are given with its CAs
 * (runtime/shared/processes-env.ts hostNetworkEnv): a proxy's URL may carry its credentials.
 */
function proxyUrls(source: Record<string, string | undefined>): string[] {
  return ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"].flatMap((key) => (source[key] ? [source[key]] : []));
}

/**
 * The secrets written into URLs (`https://ci:token@mirror/simple/`, or a token alone as the user
 * name; pip's settings hold several, space-separated), as given and percent-decoded: pip or the
 * engine's own messages may print such a URL, and the build log must not show the secret. A user
 * name beside a password is no secret, and masking it would mangle every word it occurs in.
 */
export function urlCredentials(values: string[]): string[] {
  const found = new Set<string>();
  for (const word of values.flatMap((value) => value.split(/\s+/))) {
    if (!URL.canParse(word)) continue;
    const { username, password } = new URL(word);
    const secret = password || username;
    if (secret === "") continue;
    found.add(secret);
    found.add(decodeURIComponent(secret));
  }
  return [...found];
}

/** SLIPWAY_NODE_VERSION: `system`, or a spec as an .nvmrc holds one (`lts`, `22`, `>=20 <23`). */
export function parseNodeDefault(value: string): NodeDefault {
  if (value.trim().toLowerCase() === "system") return "system";
  const parsed = parseNodeSpec(value, "SLIPWAY_NODE_VERSION");
  if (!parsed.ok) throw new Error(`Invalid engine configuration: ${parsed.reason} (lts, a version or range, or system)`);
  return parsed.request;
}
