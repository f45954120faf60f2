import pino from "pino";
import { createAgent } from "./agent";
import { loadEngineConfig } from "./config";
import { createLocalEngine } from "./core";

/**
 * The engine process for a `local` cluster: `npm run engine`, or `slipway engine --url … --token …`.
 * SIGTERM/SIGINT stop the agent; the router and the apps keep running, and the next engine
 * adopts them.
 */
export const ENGINE_VERSION = "0.1.0";

export async function runEngine(source: Record<string, string | undefined> = process.env) {
  const config = loadEngineConfig(source);
  const logger = config.pretty
    ? pino({ level: config.logLevel }, pino.transport({ target: "pino-pretty", options: { ignore: "pid,hostname", translateTime: "HH:MM:ss" } }))
    : pino({ level: config.logLevel });
  const agent = createAgent(
    {
      url: config.url,
      token: config.token,
      engineVersion: ENGINE_VERSION,
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], databases: [], routerPort: config.routerPort },
      logger,
      heartbeatMs: config.heartbeatMs,
      onRefused: (reason) => {
        logger.fatal({ reason }, "engine token refused; stopping");
        void agent.shutdown().finally(() => process.exit(1));
      },
    },
    (reporter) => createLocalEngine({ home: config.home, routerPort: config.routerPort, routerHost: config.routerHost, reporter, logger }),
  );
  await agent.start();
  logger.info({ home: config.home, router: `http://localhost:${config.routerPort}` }, "engine started");

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void agent.shutdown().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runEngine().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
