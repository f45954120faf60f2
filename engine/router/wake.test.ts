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

/** One poll of the router's `/wakes`, as the engine makes it, given up (its connection closed) after `ms` when not answered by then. */
async function pollWithin(home: string, ms: number): Promise<string[] | "no answer"> {
  const signal = AbortSignal.timeout(ms);
  return routerClient(home)
    .wakes(signal)
    .catch((error: unknown) => {
      if (signal.aborted) return "no answer" as const;
      throw error;
    });
}

/** Resolves once the router holds `count` requests of the service (asking for its wake as it took them). */
async function heldBy(home: string, serviceId: string, count: number): Promise<void> {
  while (((await routerClient(home).stats()).held?.[serviceId] ?? 0) < count) await new Promise((resolve) => setTimeout(resolve, 10));
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

  /**
   * The engine restarting: its poll's connection goes away, or it read an answer and died before
   * waking anything. The held requests must not wait out their timeout for a wake nobody asked for.
   * A router of its own, so that no other test's wakes are pending.
   */
  describe("while the engine restarts", () => {
    let away: Awaited<ReturnType<typeof startRouter>>;
    let awayHome: string;
    let awayPort: number;
    const awayClient = () => routerClient(awayHome);

    beforeAll(async () => {
      awayHome = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-wake-away-")));
      await fs.mkdir(routerFiles(awayHome).dir, { recursive: true });
      awayPort = await testPort();
      away = await startRouter({
        ...routerFiles(awayHome),
        port: awayPort,
        host: "127.0.0.1",
        logger: pino({ level: "silent" }),
        wake: { timeoutMs: 5_000, pageAfterMs: 5_000, maxPerService: 3, askAgainAfterMs: 300 },
      });
    });

    afterAll(async () => {
      await away?.close();
      await fs.rm(awayHome, { recursive: true, force: true });
    });

    it("keeps a wake asked while the engine's poll was gone for the next poll", async () => {
      await awayClient().putRoutes({ routes: [sleeping("s-lost", ["lost.localhost"])] });
      // The poll's client goes away while nothing is asked.
      expect(await pollWithin(awayHome, 100)).toBe("no answer");
      const held = send(awayPort, { host: "lost.localhost" });
      await heldBy(awayHome, "s-lost", 1);
      // Well before the router would ask again for a wake it handed over.
      expect(await pollWithin(awayHome, 250)).toEqual(["s-lost"]);
      await awayClient().putRoutes({ routes: [awake("s-lost", ["lost.localhost"])] });
      expect((await held).status).toBe(200);
    });

    it("asks again for a service whose requests still wait after their wake was handed over", async () => {
      await awayClient().putRoutes({ routes: [sleeping("s-again", ["again.localhost"])] });
      const held = send(awayPort, { host: "again.localhost" });
      expect(await pollWithin(awayHome, 1_000)).toEqual(["s-again"]);
      // This poll's engine is the one that restarted: nothing new was asked, the request still waits.
      expect(await pollWithin(awayHome, 1_000)).toEqual(["s-again"]);
      await awayClient().putRoutes({ routes: [awake("s-again", ["again.localhost"])] });
      expect((await held).status).toBe(200);
      // Released: nothing is asked again.
      expect(await pollWithin(awayHome, 1_000)).toBe("no answer");
    });
  });
});
