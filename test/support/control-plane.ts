import type { Runner } from "graphile-worker";
import type pino from "pino";
import { expect } from "vitest";
import type { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { startWebServer } from "../../server/web-server";
import { startWorker } from "../../worker/runner";
import type { TestDatabase } from "../database";
import { eventually } from "../engine-harness";

/** The control plane as `npm start` runs it (web with its gateways, the worker), stopped and started again at will on one port. */
export function controlPlane(options: { services: Services; database: TestDatabase; port: number; logger: pino.Logger }) {
  let web: Awaited<ReturnType<typeof startWebServer>> | null = null;
  let worker: Runner | null = null;
  return {
    async start() {
      web = await startWebServer({
        services: options.services,
        databaseUrl: options.database.url,
        logger: options.logger,
        port: options.port,
        host: "127.0.0.1",
      });
      await this.startWorker();
    },
    async startWorker() {
      worker = await startWorker({ services: options.services, connectionString: options.database.url, logger: options.logger, reconcileIntervalMs: 500 });
    },
    /**
     * Stops the worker alone, for a database outage with web still answering: graphile-worker's
     * cron loop rejects unhandled when its database refuses connections, which ends a test run
     * (the platform's supervisor restarts a worker process instead).
     */
    async stopWorker() {
      await worker?.stop();
      worker = null;
    },
    async stop() {
      await worker?.stop();
      await web?.close();
      worker = null;
      web = null;
    },
  };
}

const TERMINAL = ["DEPLOYED", "STOPPED", "DELETED", "BUILD_ERROR", "DEPLOYMENT_ERROR", "CANCELED"];

/** Waits for a deployment to end and checks how; `context` (the engine's output) explains a wrong ending. */
export async function deploymentEnding(
  api: ReturnType<typeof createCaller>,
  deploymentId: string,
  expected: string[],
  timeoutMs: number,
  context: () => string,
) {
  const done = await eventually(
    async () => {
      const current = await api.deployments.get({ deploymentId });
      return TERMINAL.includes(current.status) ? current : undefined;
    },
    timeoutMs,
    `deployment ${deploymentId} to end`,
  );
  expect(expected, `${done.status}: ${done.statusMessage}\n${context().slice(-3000)}`).toContain(done.status);
  return done;
}
