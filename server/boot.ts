import fs from "node:fs/promises";
import { connectDatabase } from "./db/client";
import { defaultDomainSettings } from "./domains/settings";
import { loadEnv, type Env } from "./env";
import { homeLayout, loadOrCreateMasterKey } from "./home";
import { createLogger, type Logger } from "./logger";
import type { Services } from "./context";
import { createMasterKeyring } from "./secrets/keyring";

/**
 * What the web and worker processes share at boot: validated configuration, the logger, the
 * database pool and the keyring. `npm start` passes DATABASE_URL and the master key to them.
 */
export async function bootControlPlaneProcess(
  name: string,
): Promise<{ env: Env; logger: Logger; services: Services; databaseUrl: string; close: () => Promise<void> }> {
  const env = loadEnv();
  const logger = createLogger({ name, level: env.LOG_LEVEL, pretty: env.SLIPWAY_LOG_PRETTY === "1" });
  if (!env.DATABASE_URL) throw new Error(`The ${name} process needs DATABASE_URL (npm start sets it, with an embedded PostgreSQL)`);
  const masterKey = await loadOrCreateMasterKey(homeLayout(env.home), env.SLIPWAY_MASTER_KEY);
  const database = connectDatabase(env.DATABASE_URL, {
    max: env.SLIPWAY_DATABASE_POOL_SIZE,
    onError: (error) => logger.warn({ err: error }, "idle database connection failed"),
  });
  const services: Services = {
    db: database.db,
    keyring: createMasterKeyring(masterKey.key),
    now: () => new Date(),
    leaseSeconds: env.SLIPWAY_LEASE_SECONDS,
    publicUrl: env.publicUrl,
    repositoryCheck: {
      enabled: env.SLIPWAY_CHECK_REPOSITORIES === "1",
      timeoutMs: env.SLIPWAY_GIT_CHECK_TIMEOUT_SECONDS * 1000,
      sshKnownHostsFile: homeLayout(env.home).sshKnownHostsFile,
      env: { PATH: env.PATH, HOME: env.home },
      readsLocalPaths: env.SLIPWAY_READ_LOCAL_REPOSITORIES === "1",
    },
    domains: {
      ...defaultDomainSettings,
      dnsServers: env.SLIPWAY_DNS_SERVERS,
      httpPort: env.SLIPWAY_DOMAIN_CHECK_HTTP_PORT,
      acme: {
        ...defaultDomainSettings.acme,
        directoryUrl: env.SLIPWAY_ACME_DIRECTORY_URL ?? defaultDomainSettings.acme.directoryUrl,
        caPem: env.SLIPWAY_ACME_CA_FILE ? await fs.readFile(env.SLIPWAY_ACME_CA_FILE, "utf8") : null,
        email: env.SLIPWAY_ACME_EMAIL ?? null,
      },
    },
    notifications: {
      allowPrivateTargets: env.SLIPWAY_NOTIFICATIONS_ALLOW_PRIVATE === "1",
      engineDisconnectGraceMs: env.SLIPWAY_ENGINE_DISCONNECT_GRACE_SECONDS * 1000,
    },
  };
  return { env, logger, services, databaseUrl: env.DATABASE_URL, close: database.close };
}

/** How long a process may take to stop cleanly once signalled; below the supervisor's 10 s before SIGKILL. */
export const SHUTDOWN_DEADLINE_MS = 8_000;

/**
 * Stops the process cleanly on SIGINT or SIGTERM: `stop` once, then exit 0. A second signal, or
 * a stop that takes longer than the deadline, exits at once with code 1.
 */
export function onShutdownSignal(stop: () => Promise<void>, logger: Logger, deadlineMs = SHUTDOWN_DEADLINE_MS) {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) {
      // Asked again while stopping: the caller has waited enough.
      logger.warn({ signal }, "stopping now, without waiting for the rest");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "stopping");
    // A stop that hangs (a connection pool waiting for a client nobody gives back) must not
    // leave this process running, still listening, after its supervisor is gone.
    setTimeout(() => {
      logger.error({ deadlineSeconds: deadlineMs / 1000 }, "did not stop in time; exiting");
      process.exit(1);
    }, deadlineMs).unref();
    stop()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error({ err: error }, "unclean stop");
        process.exit(1);
      });
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
