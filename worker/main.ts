import { bootControlPlaneProcess, onShutdownSignal } from "../server/boot";
import { startWorker } from "./runner";

/** The worker process: graphile-worker tasks (dispatch, lease reconciliation). Run N of them for scale. */
async function main() {
  const { logger, services, databaseUrl, close } = await bootControlPlaneProcess("worker");
  const runner = await startWorker({ services, connectionString: databaseUrl, logger });
  logger.info("worker running");
  onShutdownSignal(async () => {
    await runner.stop();
    await close();
  }, logger);
  await runner.promise;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
