import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { testPort } from "../../test/support/ports";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { routerClient } from "./router-process";
import { routerFiles, startRouter } from "./router-server";
import type { Route } from "./routes";

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: string };

function send(port: number, options: { host: string; method?: string; body?: string; accept?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: options.method ?? "GET",
        path: "/",
        agent: false,
        headers: { host: options.host, ...(options.accept ? { accept: options.accept } : {}) },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/**
 * The router's side of sleep when idle (issue 16, part 3): a sleeping service's requests are
 * held (bodies and all) until a routes table gives it an upstream, the engine hears of them
 * through the `/wakes` long poll, browsers get a waiting page after a limit, and a full queue or
 * a wake past the timeout is answered 503 with Retry-After.
 */
describe("router: requests to a sleeping service", () => {
  let home: string;
  let port: number;
  let upstream: http.Server;
  let upstreamPort: number;
  let router: Awaited<ReturnType<typeof startRouter>>;
  const client = () => routerClient(home);
  const sleeping = (serviceId: string, hosts: string[]): Route => ({ serviceId, serviceName: serviceId, hosts, upstream: null, sleeping: true });
  const awake = (serviceId: string, hosts: string[]): Route => ({
    serviceId,
    serviceName: serviceId,
    hosts,
    upstream: { host: "127.0.0.1", port: upstreamPort },
  });

  beforeAll(async () => {
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-wake-")));
    await fs.mkdir(routerFiles(home).dir, { recursive: true });
    port = await testPort();
    upstream = http.createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => (body += chunk));
      req.on("end", () => res.end(`${req.method} ${body}`));
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    router = await startRouter({
      ...routerFiles(home),
      port,
      host: "127.0.0.1",
      logger: pino({ level: "silent" }),
      wake: { timeoutMs: 1_500, pageAfterMs: 300, maxPerService: 3 },
    });
  });

  afterAll(async () => {
    await router?.close();
    upstream.closeAllConnections();
    upstream.close();
    await fs.rm(home, { recursive: true, force: true });
  });

  it("holds requests, bodies included, asks for a wake, and serves them once the service has an upstream", async () => {
    await client().putRoutes({ routes: [sleeping("s-api", ["api.localhost"])] });
    const wakes = client().wakes();
    const held = [send(port, { host: "api.localhost", method: "POST", body: "first" }), send(port, { host: "api.localhost", body: "" })];
    expect(await wakes).toEqual(["s-api"]);
    expect((await client().stats()).held).toEqual({ "s-api": 2 });
    await client().putRoutes({ routes: [awake("s-api", ["api.localhost"])] });
    const answers = await Promise.all(held);
    expect(answers.map((answer) => [answer.status, answer.body])).toEqual([
      [200, "POST first"],
      [200, "GET "],
    ]);
    expect((await client().stats()).services["s-api"]?.lastRequestAt).toBeGreaterThan(Date.now() - 10_000);
  });

  it("shows browsers a waiting page after the limit; API clients wait, then get 503 with Retry-After", async () => {
    await client().putRoutes({ routes: [sleeping("s-slow", ["slow.localhost"])] });
    const api = send(port, { host: "slow.localhost" });
    const started = Date.now();
    const browser = await send(port, { host: "slow.localhost", accept: "text/html,application/xhtml+xml" });
    expect(browser.status).toBe(503);
    expect(browser.body).toContain("Waking s-slow");
    expect(browser.body).toContain('http-equiv="refresh"');
    expect(browser.headers["retry-after"]).toBe("2");
    expect(Date.now() - started).toBeLessThan(1_400);
    const timedOut = await api;
    expect(timedOut.status).toBe(503);
    expect(timedOut.headers["retry-after"]).toBe("2");
    expect(timedOut.body).toContain("did not wake within 1.5 s");
  });

  it("answers 503 at once beyond the bounded queue, and lets the held ones through", async () => {
    await client().putRoutes({ routes: [sleeping("s-busy", ["busy.localhost"])] });
    const held = [1, 2, 3].map(() => send(port, { host: "busy.localhost" }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = await send(port, { host: "busy.localhost" });
    expect(refused.status).toBe(503);
    expect(refused.body).toContain("too many requests waiting");
    await client().putRoutes({ routes: [awake("s-busy", ["busy.localhost"])] });
    expect((await Promise.all(held)).map((answer) => answer.status)).toEqual([200, 200, 200]);
  });
});
