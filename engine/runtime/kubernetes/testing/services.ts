/** Test support: services of each kind as the engine receives them (parsed by the protocol's schema, defaults filled in). */
import { serviceSpec, type ServiceSpec } from "../../../protocol";
import type { EnvironmentScope, ReleaseMeta } from "../labels";

export const scope: EnvironmentScope = {
  organizationId: "0b7f5a0e-3c1d-4f5e-9a2b-6c7d8e9f0a1b",
  project: { id: "1c8e6b1f-4d2e-4a6f-8b3c-7d8e9f0a1b2c", name: "shop" },
  environment: { id: "2d9f7c20-5e3f-4b70-9c4d-8e9f0a1b2c3d", name: "production" },
};

export const release: ReleaseMeta = { releaseId: "20261206093000-7e2a91c4", deploymentId: "7e2a91c4-1111-4222-8333-944455556666", commit: "4f2c1e9" };

const variables = [
  { key: "NODE_ENV", value: "production", secret: false },
  { key: "STRIPE_KEY", value: "sk_live_do-not-print-me", secret: true },
];

function spec(input: Record<string, unknown>): ServiceSpec {
  return serviceSpec.parse({ variables, domains: [], ...input });
}

export const application = spec({
  id: "3e0a8d31-6f40-4c81-8d5e-9f0a1b2c3d4e",
  name: "web",
  kind: "APPLICATION",
  domains: ["web-production-shop.apps.example.com"],
  config: {
    git: { url: "https://git.example.com/shop/web.git" },
    port: 3000,
    healthCheckPath: "/healthz",
    healthCheckTimeoutSeconds: 30,
    resources: { memoryMb: 512, cpus: 0.5 },
  },
});

export const container = spec({
  id: "4f1b9e42-7051-4d92-9e6f-0a1b2c3d4e5f",
  name: "1proxy",
  kind: "CONTAINER",
  domains: ["proxy-production-shop.apps.example.com", "proxy.example.com"],
  config: {
    image: { name: "ghcr.io/acme/proxy", tag: "2.1", credentials: { username: "acme", password: "ghp_registry-secret" } },
    command: ["proxy", "--listen", ":9000"],
    port: 9000,
    user: "1000:1000",
    readOnlyRootFilesystem: true,
  },
});

export const database = spec({
  id: "5a2c0f53-8162-4ea3-8f70-1b2c3d4e5f60",
  name: "db",
  kind: "DATABASE",
  variables: [],
  config: { engine: "postgresql", connection: { port: 5433, user: "shop", password: "pg-password-secret", database: "shop" } },
});

export const redis = spec({
  id: "6b3d1064-9273-4fb4-8081-2c3d4e5f6071",
  name: "cache",
  kind: "DATABASE",
  variables: [],
  config: { engine: "redis", connection: { port: 6380, user: "default", password: "redis-password-secret", database: "0" } },
});

export const cronJob = spec({
  id: "7c4e2175-a384-40c5-9192-3d4e5f607182",
  name: "nightly",
  kind: "JOB",
  config: {
    git: { url: "https://git.example.com/shop/jobs.git" },
    command: "node reports.js",
    trigger: { type: "cron", schedule: "30 2 * * *", timeZone: "Europe/Paris", missedRuns: "skip" },
    timeoutSeconds: 900,
    retries: 2,
  },
});

export const lifecycleJob = spec({
  id: "8d5f3286-b495-41d6-a2a3-4e5f60718293",
  name: "migrate",
  kind: "JOB",
  config: {
    git: { url: "https://git.example.com/shop/web.git" },
    command: "npm run migrate",
    trigger: { type: "lifecycle", on: ["start"] },
    timeoutSeconds: 300,
    retries: 1,
  },
});
