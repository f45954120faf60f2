import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import next from "next";
import { bootControlPlaneProcess, onShutdownSignal, SHUTDOWN_DEADLINE_MS } from "./boot";
import { homeLayout, loadOrCreateAuthSecret } from "./home";
import { announceReady } from "./process/readiness";
import { startWebServer } from "./web-server";

/** The web process: API, engine gateway and the dashboard's pages on one port. */
async function main() {
  const { env, logger, services, databaseUrl, close } = await bootControlPlaneProcess("web");
  const authSecret = await loadOrCreateAuthSecret(homeLayout(env.home), env.AUTH_SECRET);
  const pages = env.SLIPWAY_WEB_UI === "1" ? await preparePages(env.PORT) : null;
  const web = await startWebServer({
    services,
    databaseUrl,
    logger,
    port: env.PORT,
    host: env.HOST,
    publicUrl: env.publicUrl,
    trustProxy: env.SLIPWAY_TRUST_PROXY === "1",
    authSecret: authSecret.secret,
    shellIdleTimeoutSeconds: Math.round(env.SLIPWAY_SHELL_IDLE_MINUTES * 60),
    shellKeepaliveSeconds: env.SLIPWAY_SHELL_KEEPALIVE_SECONDS,
    github:
      env.AUTH_GITHUB_ID && env.AUTH_GITHUB_SECRET
        ? { clientId: env.AUTH_GITHUB_ID, clientSecret: env.AUTH_GITHUB_SECRET, ...(env.AUTH_GITHUB_URL ? { enterpriseUrl: env.AUTH_GITHUB_URL } : {}) }
        : undefined,
    pages: pages?.handle,
  });
  logger.info({ url: env.publicUrl, pages: pages !== null }, "web listening");
  announceReady();
  const drainMs = env.SLIPWAY_DRAIN_SECONDS * 1000;
  onShutdownSignal(
    async () => {
      if (drainMs > 0) {
        web.drain();
        logger.info({ drainSeconds: env.SLIPWAY_DRAIN_SECONDS }, "draining: readiness answers 503 before closing");
        await sleep(drainMs);
      }
      await web.close();
      await pages?.close();
      await close();
    },
    logger,
    SHUTDOWN_DEADLINE_MS + drainMs,
  );
}

/** Next.js serving the dashboard from the production build (`npm start` makes it). */
async function preparePages(port: number) {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const pages = next({ dev: false, dir, port, hostname: "localhost" });
  await pages.prepare();
  const handle = pages.getRequestHandler();
  return { handle: (req: IncomingMessage, res: ServerResponse) => handle(req, res), close: () => pages.close() };
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
