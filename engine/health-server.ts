import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The engine's liveness and readiness probes, the paths the control plane's processes answer
 * (server/health.ts; the engine imports nothing from there): live while the process runs, ready
 * while its connection to the control plane is up. A probe that finds it not ready for long
 * points at the network or the control plane, not the engine: its apps keep serving either way.
 */
export async function startEngineHealthServer(options: { port: number; host: string; connected: () => boolean }) {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const json = (status: number, body: object) =>
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body));
    if (path === "/api/health/live") return json(200, { ok: true });
    if (path === "/api/health/ready") {
      const connected = options.connected();
      return json(connected ? 200 : 503, { ok: connected, controlPlane: connected ? "connected" : "disconnected" });
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("Not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
