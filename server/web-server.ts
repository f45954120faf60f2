import http from "node:http";
import type { AddressInfo } from "node:net";
import { createAdapter } from "@socket.io/postgres-adapter";
import pg from "pg";
import { Server as SocketServer } from "socket.io";
import { ENGINE_NAMESPACE } from "../engine/protocol/messages";
import { createApiHandler } from "./api/http";
import type { Services } from "./context";
import { connectionSettings, guardPoolErrors } from "./db/client";
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from "./db/errors";
import { answerHealth, readiness } from "./health";
import { DEPLOYMENT_CHANNEL } from "./deployments/events";
import { ENGINE_CHANNEL, type EngineNotification } from "./deployments/engine-channel";
import type { Logger } from "./logger";
import { createAuthLimits } from "./auth/rate-limits";
import { needsSignIn } from "./auth/page-guard";
import type { GitHubApp } from "./auth/github";
import { authConfig } from "./auth/sessions";
import { announceOnceSubscribed, watchAdapterReconnects } from "./realtime/adapter-subscription";
import { attachEngineGateway } from "./realtime/engine-gateway";
import { ACCESS_CHANNEL } from "./realtime/access-channel";
import { attachUiGateway } from "./realtime/ui-gateway";
import { UI_NAMESPACE, type DeploymentAnnounced, type ServiceChanged } from "./realtime/ui-protocol";
import { SERVICE_CHANGED_CHANNEL } from "./overview/live-status";
import { listenToChannels } from "./realtime/pg-listener";
import { attachShellRelay } from "./realtime/shell-relay";
import { CONNECTION_CHANNEL } from "./webhooks/connections";
import { SERVICES_CHANNEL } from "./webhooks/followed-repositories";
import { createWebhookIntake } from "./webhooks/intake";

/** How long startup waits for the realtime adapter to listen before it announces this process anyway. */
const ADAPTER_SUBSCRIBE_TIMEOUT_MS = 10_000;

type PageHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

export type WebServerOptions = {
  services: Services;
  databaseUrl: string;
  logger: Logger;
  port: number;
  host?: string;
  publicUrl?: string;
  /** Signs browser sessions; without it only API tokens authenticate. */
  authSecret?: string;
  github?: GitHubApp;
  /**
   * A reverse proxy in front sets `X-Forwarded-For`: rate limits count its last entry, not the
   * proxy's own address (which would make every client one).
   */
  trustProxy?: boolean;
  /** Shell sessions end after this long without input (15 minutes by default). */
  shellIdleTimeoutSeconds?: number;
  /** How often engines hear that this process still holds its shells' clients (20 s by default; shell-relay.ts). */
  shellKeepaliveSeconds?: number;
  /** How long engines' heartbeat stamps are gathered into one write (1 s; server/engines/heartbeat-stamps.ts); tests shorten it. */
  heartbeatStampFlushMs?: number;
  /** Next.js's request handler for pages; without it (tests) other paths answer 404. */
  pages?: PageHandler;
};

/**
 * The web process: one Node HTTP server hosting the API, sign-in, socket.io (`/engine` for
 * engines, `/ui` for browsers and the CLI) and, in production, Next.js pages. Notifications
 * arrive through Postgres, so any number of web processes can serve engines and browsers.
 */
export async function startWebServer(options: WebServerOptions) {
  const { services, logger } = options;
  const server = http.createServer();
  const publicUrl = options.publicUrl ?? `http://localhost:${options.port}`;
  const auth = options.authSecret ? authConfig(services, { secret: options.authSecret, publicUrl, github: options.github, logger }) : undefined;
  // Failed sign-ins and bad API tokens, counted in Postgres so that every web process shares the
  // counts; on a small pool of their own, so that a flood of guesses cannot starve the API's.
  const limitsPool = new pg.Pool({ ...connectionSettings(), connectionString: options.databaseUrl, max: 2 });
  guardPoolErrors(limitsPool, (error) => logger.warn({ err: error }, "rate limit connection failed"));
  const limits = createAuthLimits(limitsPool);
  const trustProxy = options.trustProxy ?? false;
  const api = createApiHandler(services, { publicUrl, logger, auth, limits, trustProxy });
  // Git providers' webhooks (/api/hooks/<connection id>): verified, stored and answered here, processed by the worker.
  const hooks = createWebhookIntake(services, { logger: logger.child({ component: "webhooks" }) });

  // Set first when the server closes: readiness answers 503 from then on (server/health.ts).
  let stopping = false;
  server.on("request", (req, res) => {
    answerHealth(req, res, () => readiness(services.db, () => stopping))
      .then((handled) => handled || hooks.handle(req, res))
      .then((handled) => handled || api(req, res))
      .then(async (handled) => {
        if (handled) return;
        if (auth && options.pages && (await needsSignIn(services, auth, req))) {
          res.writeHead(302, { location: `/signin?next=${encodeURIComponent(req.url ?? "/")}` }).end();
          return;
        }
        if (options.pages) return options.pages(req, res);
        res.writeHead(404, { "content-type": "text/plain" }).end("Not found\n");
      })
      .catch((error: unknown) => {
        // Before the API's own error handling (the rate limits' check of a token) or outside it.
        if (isDatabaseUnavailable(error)) {
          logger.warn({ err: error, url: req.url }, "request refused: the database is unavailable");
          if (!res.headersSent) res.writeHead(503, { "content-type": "application/json", "retry-after": "5" });
          res.end(JSON.stringify({ message: DATABASE_UNAVAILABLE_MESSAGE, code: "SERVICE_UNAVAILABLE" }));
          return;
        }
        logger.error({ err: error, url: req.url }, "request failed");
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("Internal error\n");
      });
  });

  // Messages emitted on one web process reach sockets held by the others through Postgres.
  const adapterPool = new pg.Pool({ ...connectionSettings(), connectionString: options.databaseUrl, max: 4 });
  // The adapter holds one client for LISTEN and reconnects when it ends, but listens to no
  // `error` on it: guarded here, a database restart no longer crashes the web process.
  guardPoolErrors(adapterPool, (error) => logger.warn({ err: error }, "realtime adapter connection failed"));
  const io = new SocketServer(server, { serveClient: false, maxHttpBufferSize: 4 * 1024 * 1024, adapter: createAdapter(adapterPool) });
  const ui = attachUiGateway(io, services, { auth, publicUrl, limits, trustProxy, logger: logger.child({ component: "ui-gateway" }) });
  const shells = attachShellRelay(io, services, {
    logger: logger.child({ component: "shells" }),
    idleTimeoutSeconds: options.shellIdleTimeoutSeconds,
    keepaliveSeconds: options.shellKeepaliveSeconds,
    reauthorize: ui.reauthorize,
  });
  ui.onAccessChanged(shells.accessChanged);
  const engines = attachEngineGateway(
    io,
    services,
    logger.child({ component: "engine-gateway" }),
    (stream, lines) => {
      const room = stream.kind === "deployment" ? (`deployment:${stream.deploymentId}` as const) : (`service:${stream.serviceId}` as const);
      const serviceId = stream.serviceId;
      const deploymentId = stream.kind === "deployment" ? stream.deploymentId : null;
      ui.logLines({ stream: room, lines: lines.map((line) => ({ ...line, deploymentId, serviceId })) });
    },
    shells,
    options.heartbeatStampFlushMs,
  );

  const listener = listenToChannels(
    options.databaseUrl,
    [ENGINE_CHANNEL, DEPLOYMENT_CHANNEL, SERVICE_CHANGED_CHANNEL, CONNECTION_CHANNEL, SERVICES_CHANNEL, ACCESS_CHANNEL],
    (channel, payload) => {
      if (channel === ENGINE_CHANNEL) engines.notify(JSON.parse(payload) as EngineNotification);
      else if (channel === DEPLOYMENT_CHANNEL) {
        const announced = JSON.parse(payload) as DeploymentAnnounced;
        engines.deploymentAnnounced(announced.environmentId);
        ui.deploymentChanged(announced);
      } else if (channel === SERVICE_CHANGED_CHANNEL) ui.serviceChanged(JSON.parse(payload) as ServiceChanged);
      else if (channel === CONNECTION_CHANNEL) hooks.forget(payload);
      else if (channel === SERVICES_CHANNEL) hooks.forgetRepositories(payload);
      else if (channel === ACCESS_CHANNEL) void ui.accessChanged(payload);
    },
    logger,
    () => {
      engines.listenerConnected();
      // What it missed (statuses, access changes) is re-read by engines and browsers alike.
      ui.resync();
    },
  );
  await listener.ready;
  // Before this process can be reached: the others count it only once it can hear them back.
  const announced = await announceOnceSubscribed([io.of("/"), io.of(UI_NAMESPACE), io.of(ENGINE_NAMESPACE)], ADAPTER_SUBSCRIBE_TIMEOUT_MS);
  if (!announced) logger.warn("the realtime adapter was not listening yet; the other web processes are heard from their next heartbeat");
  // Log lines and statuses the other processes broadcast while the adapter was not listening are lost.
  const stopWatchingAdapter = watchAdapterReconnects(io.of(UI_NAMESPACE), () => {
    logger.info("the realtime adapter listens again; its browsers re-read what they show");
    ui.resync();
  });

  await new Promise<void>((resolve) => server.listen(options.port, options.host ?? "0.0.0.0", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    io,
    /** Readiness answers 503 from now on while everything else still serves: a load balancer takes this process out. */
    drain() {
      stopping = true;
    },
    async close() {
      stopping = true;
      await listener.close();
      ui.close();
      shells.close();
      stopWatchingAdapter();
      await engines.close();
      const closed = new Promise<void>((resolve) => io.close(() => resolve()));
      // io.close() ends the sockets and stops accepting; kept-alive HTTP connections would
      // otherwise hold the server open until they time out.
      server.closeAllConnections();
      await closed;
      await hooks.close();
      await endPool(adapterPool, logger);
      await limitsPool.end();
    },
  };
}

/**
 * Ends the realtime adapter's pool, without waiting forever. The adapter acquires its LISTEN
 * client in the background; when the server closes before that finishes, the client is
 * acquired after the adapter let go of it and is never given back, and `pool.end()` would wait
 * for it for ever (it made a test time out on a busy machine). The process is closing anyway:
 * after a short grace the connection is left to close with it.
 */
async function endPool(pool: pg.Pool, logger: Logger, graceMs = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    pool.end().then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(resolve, graceMs, false);
    }),
  ]);
  clearTimeout(timer);
  if (!ended) logger.warn({ graceSeconds: graceMs / 1000 }, "the realtime adapter still held a connection; closing without it");
}
