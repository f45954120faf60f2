import path from "node:path";
import { z } from "zod";
import { envNumber } from "../engine/protocol/env-number";
import { domainSuffix } from "./clusters/domain-suffix";

/**
 * A retention period: a whole number of days, written without a unit ("30", not "30d"), at least
 * 1 and at most a hundred years. Anything else stops the process at boot rather than keeping
 * (or deleting) data by a guess.
 */
const retentionDays = (days: number) =>
  z
    .string()
    .regex(/^[1-9][0-9]{0,4}$/, 'must be a whole number of days, written without a unit (e.g. "30"), at least 1')
    .default(String(days))
    .transform(Number)
    .pipe(z.number().max(36_500, "must be at most 36500 days"));

/**
 * Configuration of the control-plane processes (start, web, worker), validated once at boot.
 * Nothing else in server/ or worker/ reads process.env.
 */
const schema = z.object({
  SLIPWAY_HOME: z.string().default(".slipway"),
  DATABASE_URL: z.string().url().optional(),
  SLIPWAY_MASTER_KEY: z.string().optional(),
  PORT: envNumber(z.number().int().min(0).max(65535)).default(3000),
  HOST: z.string().default("0.0.0.0"),
  SLIPWAY_URL: z.string().url().optional(),
  /** `1` when a reverse proxy in front sets `X-Forwarded-For`: rate limits then count clients by it. */
  SLIPWAY_TRUST_PROXY: z.enum(["0", "1"]).default("0"),
  SLIPWAY_ROUTER_PORT: envNumber(z.number().int().min(0).max(65535)).default(8080),
  /** The embedded engine's router HTTPS port, for custom domains (issue 16); 0 serves no HTTPS. */
  SLIPWAY_ROUTER_HTTPS_PORT: envNumber(z.number().int().min(0).max(65535)).default(8443),
  /**
   * The `local` cluster's domain suffix, given to it on the first start: held to a new cluster's
   * rules (a DNS name, labels of 63 characters at most, 189 in all), or its services' hostnames
   * would be names DNS refuses. Written as DNS compares it: case and a final dot do not matter.
   */
  SLIPWAY_DOMAIN: z
    .string()
    .trim()
    .toLowerCase()
    .transform((name) => name.replace(/\.$/, ""))
    .pipe(domainSuffix)
    .default("localhost"),
  /** Custom domains (issue 16): DNS servers for their checks ("127.0.0.1:53,[::1]:53"); the system's when unset. */
  SLIPWAY_DNS_SERVERS: z
    .string()
    .optional()
    .transform((value) =>
      value
        ? value
            .split(",")
            .map((server) => server.trim())
            .filter(Boolean)
        : null,
    ),
  /** The port the domain checks reach routers on: 80, where ACME HTTP-01 looks too. */
  SLIPWAY_DOMAIN_CHECK_HTTP_PORT: envNumber(z.number().int().min(1).max(65535)).default(80),
  /** The ACME directory certificates come from; Let's Encrypt's production one by default. */
  SLIPWAY_ACME_DIRECTORY_URL: z
    .string()
    .url()
    .regex(/^https:\/\//, "SLIPWAY_ACME_DIRECTORY_URL must be an https:// URL")
    .optional(),
  /** A PEM file of a private ACME CA's root, trusted for the directory's HTTPS. */
  SLIPWAY_ACME_CA_FILE: z.string().optional(),
  /** The ACME account's contact address. */
  SLIPWAY_ACME_EMAIL: z.string().email().optional(),
  /**
   * `0` saves services without checking their repositories (server/git/check-repository.ts): for
   * a control plane that cannot reach the git hosts its engines clone from.
   */
  SLIPWAY_CHECK_REPOSITORIES: z.enum(["0", "1"]).default("1"),
  /**
   * `1` lets the control plane read local repositories (`file://`, paths) on its own host, to
   * check them and plan their builds: where it shares the host with the engine that clones them
   * (`npm start` sets it). Off, any organization's ADMIN could have it read this host's.
   */
  SLIPWAY_READ_LOCAL_REPOSITORIES: z.enum(["0", "1"]).default("0"),
  /** How long a git host has to answer that check. */
  SLIPWAY_GIT_CHECK_TIMEOUT_SECONDS: envNumber(z.number().min(1).max(120)).default(10),
  /**
   * `1` lets notification webhooks (generic, Slack, Discord) go to private, loopback and
   * link-local addresses: for receivers on the instance's own network. Off, such a URL is refused
   * when a rule is saved and when a delivery connects (server/notifications/target-address.ts).
   */
  SLIPWAY_NOTIFICATIONS_ALLOW_PRIVATE: z.enum(["0", "1"]).default("0"),
  /**
   * How long an engine may stay disconnected before engine.disconnected is sent: a restart or a
   * network blip it recovers from within this is not reported. Longer than the engines'
   * heartbeat interval (SLIPWAY_HEARTBEAT_SECONDS), which is how their return is seen.
   */
  SLIPWAY_ENGINE_DISCONNECT_GRACE_SECONDS: envNumber(z.number().int().min(5).max(86_400)).default(60),
  /** Where git (the repository check) is found. */
  PATH: z.string().default("/usr/local/bin:/usr/bin:/bin"),
  SLIPWAY_LEASE_SECONDS: envNumber(z.number().int().min(2)).default(30),
  /**
   * Connections of the process's main database pool (web: API, sign-in, gateways; worker: its
   * tasks). Each process opens a few more of its own beside it: deploy/README.md sums them up.
   */
  SLIPWAY_DATABASE_POOL_SIZE: envNumber(z.number().int().min(1).max(1000)).default(10),
  /** Jobs one worker process runs at once; graphile-worker's pool is this plus two (its LISTEN and the cron). */
  SLIPWAY_WORKER_CONCURRENCY: envNumber(z.number().int().min(1).max(1000)).default(8),
  /**
   * When set, the worker answers liveness and readiness probes on this port (GET
   * /api/health/live and /api/health/ready, as web does on its own port). Unset: no listener.
   */
  SLIPWAY_WORKER_HEALTH_PORT: envNumber(z.number().int().min(1).max(65535)).optional(),
  /**
   * `0`: web serves the API, sign-in, webhooks and sockets without the dashboard's pages, and
   * needs no production build of the UI (nodes that serve engines and the API only).
   */
  SLIPWAY_WEB_UI: z.enum(["0", "1"]).default("1"),
  /**
   * On SIGTERM, web first answers readiness 503 for this many seconds while it still serves, so
   * that a load balancer moves traffic (and its WebSockets) to the other processes before this
   * one closes. 0: close at once (npm start, where nothing balances).
   */
  SLIPWAY_DRAIN_SECONDS: envNumber(z.number().min(0).max(60)).default(0),
  /** Shell sessions end after this many minutes without input. */
  SLIPWAY_SHELL_IDLE_MINUTES: envNumber(z.number().min(0.05).max(1440)).default(15),
  /**
   * How often a web process tells engines that it still holds its shells' clients. A shell whose
   * web process dies without closing it (killed, its machine gone) ends after three missed.
   */
  SLIPWAY_SHELL_KEEPALIVE_SECONDS: envNumber(z.number().int().min(1).max(3600)).default(20),
  /**
   * How long the worker's retention task (server/retention) keeps each kind of record, in days.
   * Deployments: their events and build logs (the rows, with their snapshots, stay).
   */
  SLIPWAY_RETENTION_DEPLOYMENTS_DAYS: retentionDays(90),
  SLIPWAY_RETENTION_LOGS_DAYS: retentionDays(14),
  SLIPWAY_RETENTION_METRICS_DAYS: retentionDays(30),
  SLIPWAY_RETENTION_WEBHOOKS_DAYS: retentionDays(30),
  SLIPWAY_RETENTION_AUDIT_DAYS: retentionDays(365),
  AUTH_SECRET: z.string().min(16).optional(),
  /** A GitHub OAuth app; "Sign in with GitHub" appears when both are set. */
  AUTH_GITHUB_ID: z.string().min(1).optional(),
  AUTH_GITHUB_SECRET: z.string().min(1).optional(),
  /** GitHub Enterprise Server's address, for an OAuth app registered there; github.com when unset. */
  AUTH_GITHUB_URL: z.string().url().optional(),
  /** Where `npm start` logs the CLI in on the first boot (the CLI reads the same variable). */
  SLIPWAY_CONFIG: z.string().optional(),
  /**
   * When set, the first boot also writes its credentials here as JSON (0600), for automation
   * such as the end-to-end tests; without it they are only printed.
   */
  SLIPWAY_FIRST_BOOT_FILE: z.string().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  SLIPWAY_LOG_PRETTY: z.enum(["0", "1"]).optional(),
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
});

export type Env = z.infer<typeof schema> & { home: string; publicUrl: string };

export function loadEnv(source: Record<string, string | undefined> = process.env): Env {
  const parsed = schema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
    throw new Error(`Invalid configuration: ${problems}`);
  }
  const env = parsed.data;
  return {
    ...env,
    home: path.resolve(env.SLIPWAY_HOME),
    publicUrl: env.SLIPWAY_URL ?? `http://localhost:${env.PORT}`,
  };
}
