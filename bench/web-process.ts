import { bootControlPlaneProcess, onShutdownSignal } from "../server/boot";
import { startWebServer } from "../server/web-server";

/**
 * The web process as `npm start` runs it (server/web.ts: API, webhook intake, engine and UI
 * gateways), without the dashboard's pages, which need a production build the benchmarks do
 * not measure. Configured by the same environment (DATABASE_URL, SLIPWAY_MASTER_KEY, PORT).
 */
async function main() {
  const { env, logger, services, databaseUrl, close } = await bootControlPlaneProcess("web");
  const web = await startWebServer({ services, databaseUrl, logger, port: env.PORT, host: "127.0.0.1", publicUrl: env.publicUrl });
  console.log("listening");
  onShutdownSignal(async () => {
    await web.close();
    await close();
  }, logger);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
