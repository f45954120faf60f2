import path from "node:path";
import { fileURLToPath } from "node:url";
import next from "next";
import { bootControlPlaneProcess, onShutdownSignal } from "./boot";
import { homeLayout, loadOrCreateAuthSecret } from "./home";
import { startWebServer } from "./web-server";

/** The web process: API, engine gateway and the dashboard's pages on one port. */
async function main() {
  const { env, logger, services, databaseUrl, close } = await bootControlPlaneProcess("web");
  const authSecret = await loadOrCreateAuthSecret(homeLayout(env.home), env.AUTH_SECRET);
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const pages = next({ dev: false, dir, port: env.PORT, hostname: "localhost" });
  await pages.prepare();
  const handle = pages.getRequestHandler();
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
    github: env.AUTH_GITHUB_ID && env.AUTH_GITHUB_SECRET ? { clientId: env.AUTH_GITHUB_ID, clientSecret: env.AUTH_GITHUB_SECRET } : undefined,
    pages: (req, res) => handle(req, res),
  });
  logger.info({ url: env.publicUrl }, "web listening");
  onShutdownSignal(async () => {
    await web.close();
    await pages.close();
    await close();
  }, logger);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
