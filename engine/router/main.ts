import { parseArgs } from "node:util";
import { createEngineLogger } from "../logger";
import { processStartTime } from "../runtime/local/processes";
import { writeJsonAtomic } from "../runtime/shared/files";
import { DEFAULT_MAX_CONNECTIONS } from "./connection-limit";
import { routerFiles, startRouter } from "./router-server";

/**
 * The router process, started detached by the engine (router-process.ts) so that apps stay
 * reachable while the engine is down. Usage: main.ts --home <dir> --port <n> [--https-port <n>] [--host 127.0.0.1]
 * [--wake-timeout-ms <n>] [--wake-page-after-ms <n>] [--max-connections <n>]
 */
const { values } = parseArgs({
  options: {
    home: { type: "string" },
    port: { type: "string" },
    "https-port": { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    "wake-timeout-ms": { type: "string" },
    "wake-page-after-ms": { type: "string" },
    "max-connections": { type: "string" },
  },
});
if (!values.home || !values.port) throw new Error("usage: router/main.ts --home <dir> --port <port> [--host <host>]");

const logger = createEngineLogger({ name: "slipway-router" });
const files = routerFiles(values.home);
const port = Number(values.port);
const host = values.host ?? "127.0.0.1";
const httpsPort = values["https-port"] ? Number(values["https-port"]) : undefined;
const wake = {
  ...(values["wake-timeout-ms"] ? { timeoutMs: Number(values["wake-timeout-ms"]) } : {}),
  ...(values["wake-page-after-ms"] ? { pageAfterMs: Number(values["wake-page-after-ms"]) } : {}),
};
const maxConnections = values["max-connections"] ? Number(values["max-connections"]) : DEFAULT_MAX_CONNECTIONS;
if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new Error("--max-connections must be a whole number, 1 or more");
const router = await startRouter({ ...files, port, host, httpsPort, logger, wake, maxConnections });
await writeJsonAtomic(files.pidFile, { pid: process.pid, startTime: processStartTime(process.pid), port, host });
logger.info({ port, httpsPort, host, maxConnections }, "router listening");

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    void router.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}
