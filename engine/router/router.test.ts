import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { testPort } from "../../test/support/ports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, request } from "../../test/engine-harness";
import { killProcessesUnder } from "../../test/process-cleanup";
import { ensureRouter, routerClient } from "./router-process";
import { hostnameOf } from "./routes";

describe("router", () => {
  let home: string;
  let port: number;
  let upstream: http.Server;
  let upstreamPort: number;
  let releaseSlow: () => void = () => {};

  beforeAll(async () => {
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-router-")));
    port = await testPort();
    upstream = http.createServer((req, res) => {
      if (req.url === "/slow") {
        releaseSlow = () => res.end("slow done");
        return;
      }
      res.end(`upstream saw host ${req.headers.host} forwarded ${req.headers["x-forwarded-host"]}`);
    });
    // A minimal websocket-style upgrade: switch protocols, then echo bytes back.
    upstream.on("upgrade", (_req, socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
      socket.on("data", (chunk: Buffer) => socket.write(chunk));
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    await ensureRouter({ home, port, host: "127.0.0.1" });
    const closedPort = await testPort();
    await routerClient(home).putRoutes({
      routes: [
        { serviceId: "s-web", serviceName: "web", hosts: ["web-shop.localhost", "www.example.test"], upstream: { host: "127.0.0.1", port: upstreamPort } },
        { serviceId: "s-stopped", serviceName: "worker-ui", hosts: ["stopped.localhost"], upstream: null },
        { serviceId: "s-refused", serviceName: "broken", hosts: ["refused.localhost"], upstream: { host: "127.0.0.1", port: closedPort } },
        { serviceId: "s-new", serviceName: "flask", hosts: ["flask.localhost"], upstream: null, neverDeployed: true },
      ],
    });
  });

  afterAll(async () => {
    upstream.closeAllConnections();
    upstream.close();
    await killProcessesUnder(home);
    await fs.rm(home, { recursive: true, force: true });
  });

  it("routes by Host, ignoring case and port", async () => {
    const response = await request(port, "WEB-Shop.LocalHost:8080");
    expect(response.status).toBe(200);
    expect(response.body).toContain("forwarded WEB-Shop.LocalHost:8080");
    expect((await request(port, "www.example.test")).status).toBe(200);
  });

  it("answers 404 naming an unknown host, 503 for a stopped service, 502 when the upstream refuses", async () => {
    const unknown = await request(port, "nobody.localhost");
    expect(unknown.status).toBe(404);
    expect(unknown.body).toContain("nobody.localhost");
    const stopped = await request(port, "stopped.localhost");
    expect(stopped.status).toBe(503);
    expect(stopped.body).toContain("worker-ui");
    const refused = await request(port, "refused.localhost");
    expect(refused.status).toBe(502);
    expect(refused.body).toContain("broken");
  });

  it("answers 503 saying so for a service that exists but never went live, over HTTP and to an upgrade", async () => {
    const page = await request(port, "flask.localhost");
    expect(page.status).toBe(503);
    expect(page.body).toContain("<h1>Not deployed yet</h1>");
    expect(page.body).toContain("The service flask has not been deployed successfully yet");
    const upgrade = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, headers: { host: "flask.localhost", connection: "upgrade", upgrade: "websocket" } });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      req.on("upgrade", () => reject(new Error("upgraded to a service with no release")));
      req.on("error", reject);
      req.end();
    });
    expect(upgrade).toEqual({ status: 503, body: "The service flask has not been deployed successfully yet.\n" });
  });

  it("proxies upgrades (websockets) both ways", async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, headers: { host: "web-shop.localhost", connection: "upgrade", upgrade: "websocket" } });
      req.on("upgrade", (_res, socket) => {
        socket.once("data", (chunk: Buffer) => {
          resolve(chunk.toString());
          socket.destroy();
        });
        socket.write("ping through the router");
      });
      req.on("error", reject);
      req.end();
    });
    expect(echoed).toBe("ping through the router");
  });

  it("counts in-flight requests per upstream and per-service counters", async () => {
    const client = routerClient(home);
    const slow = request(port, "web-shop.localhost", "/slow");
    const key = `127.0.0.1:${upstreamPort}`;
    await eventually(async () => (await client.stats()).inFlight[key] === 1, 5_000, "one request in flight");
    releaseSlow();
    expect((await slow).body).toBe("slow done");
    await eventually(async () => (await client.stats()).inFlight[key] === undefined, 5_000, "no request in flight");
    const stats = await client.stats();
    expect(stats.services["s-web"]?.requests).toBeGreaterThanOrEqual(3);
    expect(stats.services["s-refused"]?.errors).toBe(1);
  });

  it("is reused when alive and serves the persisted table after a restart", async () => {
    const pid = await ensureRouter({ home, port, host: "127.0.0.1" });
    expect(await ensureRouter({ home, port, host: "127.0.0.1" })).toBe(pid);
    process.kill(pid, "SIGKILL");
    await eventually(
      () =>
        fs.access(`/proc/${pid}`).then(
          () => false,
          () => true,
        ),
      5_000,
      "router gone",
    );
    const restarted = await ensureRouter({ home, port, host: "127.0.0.1" });
    expect(restarted).not.toBe(pid);
    expect((await request(port, "web-shop.localhost")).status).toBe(200);
  });
});

describe("router connection limit", () => {
  let home: string;
  let port: number;
  let upstream: http.Server;
  let upstreamKey: string;
  /** Requests the upstream holds unanswered: each keeps its connection to the router open. */
  const waiting: http.ServerResponse[] = [];

  beforeAll(async () => {
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-router-limit-")));
    port = await testPort();
    upstream = http.createServer((req, res) => {
      if (req.url === "/hold") waiting.push(res);
      else res.end("upstream answered");
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamKey = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    await ensureRouter({ home, port, host: "127.0.0.1", maxConnections: 3 });
    await routerClient(home).putRoutes({
      routes: [
        { serviceId: "s-web", serviceName: "web", hosts: ["web.localhost"], upstream: { host: "127.0.0.1", port: (upstream.address() as AddressInfo).port } },
      ],
    });
  });

  afterAll(async () => {
    upstream.closeAllConnections();
    upstream.close();
    await killProcessesUnder(home);
    await fs.rm(home, { recursive: true, force: true });
  });

  it("answers 503 with Retry-After over its bound, keeps serving the connections it holds, and serves again once they close", async () => {
    const held = [1, 2, 3].map(() => request(port, "web.localhost", "/hold"));
    await eventually(async () => (await routerClient(home).stats()).inFlight[upstreamKey] === 3, 5_000, "three requests in flight");

    const over = await request(port, "web.localhost");
    expect(over.status).toBe(503);
    expect(over.headers["retry-after"]).toBe("1");
    expect(over.body).toContain("3 connections open");

    // The connections it holds are served to the end.
    for (const res of waiting.splice(0)) res.end("held and answered");
    for (const response of await Promise.all(held)) expect(response).toMatchObject({ status: 200, body: "held and answered" });
    await eventually(async () => (await request(port, "web.localhost")).status === 200, 5_000, "a request served once the connections closed");
  });

  it("is restarted with a new bound when the engine asks for one", async () => {
    const pid = await ensureRouter({ home, port, host: "127.0.0.1", maxConnections: 3 });
    expect(await ensureRouter({ home, port, host: "127.0.0.1", maxConnections: 5 })).not.toBe(pid);
  });
});

describe("hostnameOf", () => {
  it("lowercases and strips the port", () => {
    expect(hostnameOf("App.Example.COM:443")).toBe("app.example.com");
    expect(hostnameOf("[::1]:8080")).toBe("[::1]");
    expect(hostnameOf(undefined)).toBe("");
  });
});
