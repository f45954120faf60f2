import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Database } from "../server/db/client";
import { answerHealth, readiness } from "../server/health";

/**
 * The worker's liveness and readiness probes (server/health.ts) on a port of their own: the
 * worker serves nothing else over HTTP. Ready while the database answers and the runner runs.
 */
export async function startWorkerHealthServer(options: { db: Database; port: number; host: string; running: () => boolean }) {
  let stopping = false;
  const server = http.createServer((req, res) => {
    answerHealth(req, res, () => readiness(options.db, () => stopping, options.running))
      .then((handled) => {
        if (!handled) res.writeHead(404, { "content-type": "text/plain" }).end("Not found\n");
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("Internal error\n");
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    /** Readiness answers 503 from now on (the runner is stopping); liveness still answers. */
    stopping() {
      stopping = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
