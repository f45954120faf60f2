import { bootControlPlaneProcess, onShutdownSignal } from "../server/boot";
import { announceReady } from "../server/process/readiness";
import { retentionPolicy } from "../server/retention/retention";
import { startWorkerHealthServer } from "./health-server";
import { startLastingRunner, surviveUnhandledDatabaseOutages } from "./lasting-runner";
import { startWorker } from "./runner";

/** The worker process: graphile-worker tasks (dispatch, lease reconciliation). Run N of them for scale. */
async function main() {
  const { env, logger, services, databaseUrl, close } = await bootControlPlaneProcess("worker");
  const retention = retentionPolicy(env);
  surviveUnhandledDatabaseOutages(logger);
  const runner = await startLastingRunner(
    () => startWorker({ services, connectionString: databaseUrl, logger, retention, concurrency: env.SLIPWAY_WORKER_CONCURRENCY }),
    logger,
  );
  const health =
    env.SLIPWAY_WORKER_HEALTH_PORT === undefined
      ? null
      : await startWorkerHealthServer({ db: services.db, port: env.SLIPWAY_WORKER_HEALTH_PORT, host: env.HOST, running: runner.running });
  logger.info({ retentionDays: retention, concurrency: env.SLIPWAY_WORKER_CONCURRENCY, healthPort: health?.port ?? null }, "worker running");
  announceReady();
  onShutdownSignal(async () => {
    health?.stopping();
    await runner.stop();
    await health?.close();
    await close();
  }, logger);
  await runner.promise;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
