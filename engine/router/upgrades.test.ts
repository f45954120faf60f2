import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/engine-harness";
import { testPort } from "../../test/support/ports";
import { selfSignedCertificate } from "../../test/support/self-signed";
import { routerClient } from "./router-process";
import { routerFiles, startRouter } from "./router-server";
import type { Route } from "./routes";

const run = promisify(execFile);

/** Writes raw bytes on a connection of its own: all that came back until the router closed it, or `waitMs` passed. */
function exchange(port: number, bytes: string, waitMs = 1_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    let closed = false;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      closed = true;
      resolve({ text, closed });
    });
    socket.on("connect", () => socket.write(bytes));
    setTimeout(() => {
      resolve({ text, closed });
      socket.destroy();
    }, waitMs);
  });
}

const statusLines = (text: string) => text.match(/HTTP\/1\.[01] \d{3} [^\r]*/g) ?? [];

/** A websocket handshake through the router, as the existing router tests make it: what came back for `ping`, or the refusal. */
function websocket(port: number, host: string): Promise<{ echoed: string } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, agent: false, headers: { host, connection: "upgrade", upgrade: "websocket" } });
    req.on("upgrade", (_res, socket) => {
      socket.once("data", (chunk: Buffer) => {
        resolve({ echoed: chunk.toString() });
        socket.destroy();
      });
      socket.write("ping");
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Requests that ask to upgrade to something the router does not proxy: `curl --http2` over plain
 * HTTP (h2c), TLS/1.0 (RFC 2817), a token nobody knows. Like nginx or HAProxy, the router answers
 * them over HTTP/1.1 as plain requests, while websocket upgrades still go through; `Expect:
 * 100-continue` and CONNECT are answered too, never left hanging or tunnelled.
 */
describe("router: upgrades it does not proxy", () => {
  let home: string;
  let port: number;
  let httpsPort: number;
  /** A UUID, as a custom domain's service has. */
  const appId = "6c1f5d52-5d3b-4c59-9a54-0d6c38c0b8a1";
  let router: Awaited<ReturnType<typeof startRouter>>;
  /** An app as most are: no upgrade handling at all (Node then serves an Upgrade request as a plain one). */
  let app: http.Server;
  /** The upgrade headers each request reached the app with. */
  const appSaw: Array<{ upgrade?: string; settings?: string; connection?: string }> = [];
  /** An app that speaks websockets: switches protocols, then echoes. */
  let sockets: http.Server;
  const appConnections = new Set<net.Socket>();
  const route = (serviceId: string, host: string, server: http.Server | null): Route => ({
    serviceId,
    serviceName: serviceId,
    hosts: [host],
    upstream: server ? { host: "127.0.0.1", port: (server.address() as net.AddressInfo).port } : null,
    ...(server ? {} : { sleeping: true }),
  });
  const awakeRoutes = () => [route(appId, "app.localhost", app), route("s-sockets", "ws.localhost", sockets)];

  beforeAll(async () => {
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-upgrades-")));
    await fs.mkdir(routerFiles(home).dir, { recursive: true });
    port = await testPort();
    httpsPort = await testPort();
    app = http.createServer((req, res) => {
      appSaw.push({ upgrade: req.headers.upgrade, settings: req.headers["http2-settings"] as string | undefined, connection: req.headers.connection });
      let received = 0;
      req.on("data", (chunk: Buffer) => (received += chunk.length));
      req.on("end", () => res.end(`${req.method} ${req.url} with ${received} bytes`));
    });
    sockets = http.createServer((_req, res) => res.end("not a websocket"));
    sockets.on("upgrade", (_req, socket: net.Socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
      socket.on("data", (chunk: Buffer) => socket.write(`${chunk.toString()} back`));
    });
    // Upgraded ones included, which Node's closeAllConnections leaves open: the router's close waits for them.
    for (const server of [app, sockets]) server.on("connection", (socket: net.Socket) => appConnections.add(socket));
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => sockets.listen(0, "127.0.0.1", resolve));
    router = await startRouter({ ...routerFiles(home), port, httpsPort, host: "127.0.0.1", logger: pino({ level: "silent" }), wake: { timeoutMs: 5_000 } });
    await routerClient(home).putRoutes({ routes: awakeRoutes() });
    const { certPem, keyPem } = await selfSignedCertificate({ dir: home, names: ["www.example.test"], days: 2 });
    await routerClient(home).putEdge({
      domains: [
        {
          hostname: "www.example.test",
          serviceId: appId,
          verified: true,
          verificationToken: null,
          redirectHttps: false,
          acmeChallenge: null,
          certificate: { certPem, keyPem },
        },
      ],
    });
  });

  afterAll(async () => {
    // The apps first: a connection the router passed on as an upgrade lives until one side closes it.
    for (const socket of appConnections) socket.destroy();
    for (const server of [app, sockets]) server.close();
    await router?.close();
    await fs.rm(home, { recursive: true, force: true });
  });

  it("answers curl --http2 (Upgrade: h2c) over HTTP/1.1 on one connection, the app seeing no upgrade", async () => {
    const upload = path.join(home, "upload");
    await fs.writeFile(upload, "x".repeat(100_000));
    appSaw.length = 0;
    // A GET, then a POST whose body waits for `100 Continue`, on the same connection, each asking for h2c.
    const { stdout } = await run("curl", [
      ...["-sS", "--http2", "--max-time", "10", "--resolve", `app.localhost:${port}:127.0.0.1`],
      ...["-w", "|%{http_code} %{http_version} %{num_connects}\n"],
      `http://app.localhost:${port}/first`,
      ...["--next", "--http2", "--max-time", "10", "--resolve", `app.localhost:${port}:127.0.0.1`],
      ...["-w", "|%{http_code} %{http_version} %{num_connects}\n", "--data-binary", `@${upload}`, "-H", "expect: 100-continue"],
      `http://app.localhost:${port}/upload`,
    ]);
    expect(stdout.trim().split("\n")).toEqual(["GET /first with 0 bytes|200 1.1 1", "POST /upload with 100000 bytes|200 1.1 0"]);
    expect(appSaw.map((saw) => saw.upgrade ?? saw.settings ?? "no upgrade")).toEqual(["no upgrade", "no upgrade"]);
  });

  it("serves TLS/1.0 and unknown upgrades as plain requests and keeps the connection for the next one", async () => {
    const asking = (upgrade: string) =>
      `GET /${upgrade.replace("/", "-")} HTTP/1.1\r\nhost: app.localhost\r\nconnection: Upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
    const answer = await exchange(port, asking("TLS/1.0") + asking("no-such-protocol") + "GET /after HTTP/1.1\r\nhost: app.localhost\r\n\r\n");
    expect(statusLines(answer.text)).toEqual(["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"]);
    expect(answer.text).toContain("GET /TLS-1.0 with 0 bytes");
    expect(answer.text).toContain("GET /no-such-protocol with 0 bytes");
    expect(answer.text).toContain("GET /after with 0 bytes");
    expect(answer.closed).toBe(false);
  });

  it("does the same on the HTTPS port", async () => {
    const { stdout } = await run("curl", [
      ...["-sS", "--insecure", "--http1.1", "--max-time", "10", "--resolve", `www.example.test:${httpsPort}:127.0.0.1`],
      ...["-H", "connection: Upgrade", "-H", "upgrade: TLS/1.0", "-w", "|%{http_code} %{num_connects}\n"],
      `https://www.example.test:${httpsPort}/first`,
      `https://www.example.test:${httpsPort}/second`,
    ]);
    expect(stdout.trim().split("\n")).toEqual(["GET /first with 0 bytes|200 1", "GET /second with 0 bytes|200 0"]);
  });

  it("answers a plain request with a body after Expect: 100-continue, once", async () => {
    const outcome = await new Promise<{ continues: number; status: number; body: string }>((resolve, reject) => {
      let continues = 0;
      const req = http.request({
        host: "127.0.0.1",
        port,
        method: "PUT",
        path: "/expecting",
        agent: false,
        headers: { host: "app.localhost", expect: "100-continue", "content-length": 5_000 },
      });
      req.on("continue", () => req.end("y".repeat(5_000)));
      req.on("information", () => (continues += 1));
      req.on("response", (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ continues, status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    expect(outcome).toEqual({ continues: 1, status: 200, body: "PUT /expecting with 5000 bytes" });
  });

  it("refuses CONNECT with 405 and closes the connection, tunnelling nothing", async () => {
    const answer = await exchange(
      port,
      `CONNECT 127.0.0.1:${(app.address() as net.AddressInfo).port} HTTP/1.1\r\nhost: app.localhost\r\n\r\nGET / HTTP/1.1\r\n\r\n`,
    );
    expect(statusLines(answer.text)).toEqual(["HTTP/1.1 405 Method Not Allowed"]);
    expect(answer.text).toMatch(/\r\nallow: /i);
    expect(answer.text).not.toContain("with 0 bytes");
    expect(answer.closed).toBe(true);
  });

  it("still proxies websockets: to a live app, to a sleeping one once woken, and 404s an unknown host", async () => {
    expect(await websocket(port, "ws.localhost")).toEqual({ echoed: "ping back" });
    expect(await websocket(port, "nobody.localhost")).toMatchObject({ status: 404, body: expect.stringContaining("nobody.localhost") });
    await routerClient(home).putRoutes({ routes: [route(appId, "app.localhost", app), route("s-sockets", "ws.localhost", null)] });
    try {
      const held = websocket(port, "ws.localhost");
      await eventually(async () => (await routerClient(home).stats()).held?.["s-sockets"] === 1, 5_000, "the websocket held");
      await routerClient(home).putRoutes({ routes: awakeRoutes() });
      expect(await held).toEqual({ echoed: "ping back" });
    } finally {
      await routerClient(home).putRoutes({ routes: awakeRoutes() });
    }
  });
});
