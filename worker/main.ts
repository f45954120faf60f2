import { setTimeout as sleep } from "node:timers/promises";
import { createBackoff } from "../engine/protocol/backoff";
import { bootControlPlaneProcess, onShutdownSignal } from "../server/boot";
import type { Logger } from "../server/logger";
import { announceReady } from "../server/process/readiness";
import { retentionPolicy } from "../server/retention/retention";
import { startWorkerHealthServer } from "./health-server";
import { startWorker, type WorkerOptions } from "./runner";

/**
 * Starts the runner, waiting with backoff while the database refuses connections. A worker that
 * exited instead would count each try as a failed start, and a PostgreSQL down for a minute
 * would make npm start's supervisor give up on a healthy worker (found by the chaos test).
 */
async function startWhenTheDatabaseAnswers(options: WorkerOptions, logger: Logger) {
  const backoff = createBackoff({ baseMs: 500, maxMs: 10_000 });
  for (;;) {
    try {
      return await startWorker(options);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ECONNREFUSED") throw error;
      const delayMs = backoff.next();
      logger.warn({ retryInSeconds: Math.round(delayMs / 100) / 10 }, "the database refuses connections; waiting for it");
      await sleep(delayMs);
    }
  }
}

/** The worker process: graphile-worker tasks (dispatch, lease reconciliation). Run N of them for scale. */
async function main() {
  const { env, logger, services, databaseUrl, close } = await bootControlPlaneProcess("worker");
  const retention = retentionPolicy(env);
  const runner = await startWhenTheDatabaseAnswers(
    { services, connectionString: databaseUrl, logger, retention, concurrency: env.SLIPWAY_WORKER_CONCURRENCY },
    logger,
  );
  let running = true;
  void runner.promise.finally(() => (running = false));
  const health =
    env.SLIPWAY_WORKER_HEALTH_PORT === undefined
      ? null
      : await startWorkerHealthServer({ db: services.db, port: env.SLIPWAY_WORKER_HEALTH_PORT, host: env.HOST, running: () => running });
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
