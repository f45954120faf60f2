import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/engine-harness";
import { killProcessesUnder } from "../../test/process-cleanup";
import { testPort } from "../../test/support/ports";
import { ensureRouter, routerClient } from "./router-process";

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: string; clientPort: number };

/** One request through `agent`: which client connection carried it shows whether the router kept it open. */
function send(agent: http.Agent, port: number, options: { path?: string; method?: string; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, agent, path: options.path ?? "/", method: options.method ?? "GET", headers: { host: "app.localhost" }, timeout: 5_000 },
      (res) => {
        let body = "";
        const clientPort = res.socket.localPort ?? 0;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, clientPort }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Writes raw HTTP on a connection of its own: what came back, and whether the router closed it within `waitMs`. */
function exchange(port: number, requests: string[], waitMs = 500): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    let closed = false;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("close", () => (closed = true));
    socket.on("error", reject);
    socket.on("connect", () => {
      void (async () => {
        for (const [index, request] of requests.entries()) {
          socket.write(request);
          await eventually(() => statusLines(text).length > index || closed, 5_000, "an answer");
        }
        await new Promise((done) => setTimeout(done, waitMs));
        resolve({ text, closed });
        socket.destroy();
      })().catch(reject);
    });
  });
}

/** The status lines of the answers in `text` (an answer's body runs into the next one's status line). */
const statusLines = (text: string) => text.match(/HTTP\/1\.[01] \d{3} [^\r]*/g) ?? [];

/**
 * Keep-alive through the router (keep-alive.ts): a client's connection lives by the client's
 * request, never by the app's, the router reuses its connections to apps, and what breaks on
 * one side is not left hanging on the other.
 */
describe("router keep-alive", () => {
  let home: string;
  let port: number;
  let app: http.Server;
  /** Connections the app accepted, and the Connection header of each request it got. */
  let appConnections = 0;
  const appSawConnection: Array<string | undefined> = [];
  /** Answers the app was writing when their connection closed. */
  const cutAnswers: string[] = [];
  let flaky: net.Server;
  const flakyRequests: string[] = [];

  beforeAll(async () => {
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-keep-alive-")));
    port = await testPort();
    app = http.createServer((req, res) => {
      appSawConnection.push(req.headers.connection);
      let received = 0;
      req.on("data", (chunk: Buffer) => (received += chunk.length));
      req.on("end", () => {
        if (req.url === "/close") res.setHeader("connection", "close");
        if (req.url === "/chunked") return res.write("first part, ", () => res.end("then the rest"));
        if (req.url === "/stream") {
          res.once("close", () => cutAnswers.push(res.writableFinished ? "finished" : "cut"));
          return res.write("first of many parts");
        }
        if (req.url === "/break") {
          res.writeHead(200, { "content-length": 1000 });
          return res.write("the first 20 bytes..", () => req.socket.destroy());
        }
        res.end(`${req.method} ${req.url} with ${received} bytes`);
      });
    });
    app.on("connection", () => (appConnections += 1));
    app.on("upgrade", (_req, socket: net.Socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
      socket.on("data", (chunk: Buffer) => socket.write(chunk));
    });
    // An app whose connections close as the router reuses them: it resets each on its second request,
    // as an app does that ends an idle connection at the moment a request is sent on it.
    flaky = net.createServer((socket) => {
      let requests = 0;
      socket.on("data", (chunk: Buffer) => {
        requests += 1;
        flakyRequests.push(chunk.toString("latin1").split("\r\n")[0]!);
        if (requests > 1) return socket.resetAndDestroy();
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=30\r\n\r\nok");
      });
    });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => flaky.listen(0, "127.0.0.1", resolve));
    await ensureRouter({ home, port, host: "127.0.0.1" });
    await routerClient(home).putRoutes({
      routes: [
        { serviceId: "s-app", serviceName: "app", hosts: ["app.localhost"], upstream: { host: "127.0.0.1", port: (app.address() as net.AddressInfo).port } },
        {
          serviceId: "s-flaky",
          serviceName: "flaky",
          hosts: ["flaky.localhost"],
          upstream: { host: "127.0.0.1", port: (flaky.address() as net.AddressInfo).port },
        },
      ],
    });
  });

  afterAll(async () => {
    app.closeAllConnections();
    app.close();
    flaky.close();
    await killProcessesUnder(home);
    await fs.rm(home, { recursive: true, force: true });
  });

  it("keeps an HTTP/1.1 client's connection open across answers, whatever the app does with its own", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answers = [
        await send(agent, port),
        await send(agent, port, { path: "/close" }),
        await send(agent, port, { path: "/chunked" }),
        await send(agent, port, { method: "POST", path: "/upload", body: "x".repeat(100_000) }),
        await send(agent, port),
      ];
      expect(answers.map((answer) => answer.body)).toEqual([
        "GET / with 0 bytes",
        "GET /close with 0 bytes",
        "first part, then the rest",
        "POST /upload with 100000 bytes",
        "GET / with 0 bytes",
      ]);
      // One client connection for all five: the app's `Connection: close` was about its connection to the router.
      expect(new Set(answers.map((answer) => answer.clientPort)).size).toBe(1);
      for (const answer of answers) expect(answer.headers.connection).toBe("keep-alive");
    } finally {
      agent.destroy();
    }
  });

  it("closes a client's connection when the client asks: Connection: close, or HTTP/1.0 without keep-alive", async () => {
    const closing = await exchange(port, ["GET / HTTP/1.1\r\nhost: app.localhost\r\nconnection: close\r\n\r\n"]);
    expect(statusLines(closing.text)).toEqual(["HTTP/1.1 200 OK"]);
    expect(closing.closed).toBe(true);
    const old = await exchange(port, ["GET / HTTP/1.0\r\nhost: app.localhost\r\n\r\n"]);
    expect(old.text).toMatch(/^HTTP\/1.1 200 OK\r\n[\s\S]*\r\n\r\nGET \/ with 0 bytes$/);
    expect(old.closed).toBe(true);
  });

  it("keeps an HTTP/1.0 keep-alive client's connection open while answers have a length", async () => {
    const keepAlive = "GET / HTTP/1.0\r\nhost: app.localhost\r\nconnection: keep-alive\r\n\r\n";
    const kept = await exchange(port, [keepAlive, keepAlive]);
    expect(statusLines(kept.text)).toEqual(["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"]);
    expect(kept.text.match(/^connection: keep-alive$/gim)).toHaveLength(2);
    expect(kept.closed).toBe(false);
    // A chunked answer cannot be framed for HTTP/1.0: it ends with the connection, and says so.
    const chunked = await exchange(port, ["GET /chunked HTTP/1.0\r\nhost: app.localhost\r\nconnection: keep-alive\r\n\r\n"]);
    expect(chunked.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(chunked.text).toMatch(/\r\n\r\nfirst part, then the rest$/);
    expect(chunked.closed).toBe(true);
  });

  it("reuses its connections to the app, which sees no Connection: close", async () => {
    const before = appConnections;
    appSawConnection.length = 0;
    for (let i = 0; i < 5; i++) expect((await send(new http.Agent(), port)).status).toBe(200);
    // At most one new one: the pool may have lost its last one to the app's or its own idle timeout.
    expect(appConnections - before).toBeLessThanOrEqual(1);
    expect(appSawConnection).toEqual(Array(5).fill("keep-alive"));
  });

  it("sends a request again on a new connection when the app closed the pooled one it went out on", async () => {
    const get = () =>
      new Promise<number>((resolve, reject) =>
        http
          .get({ host: "127.0.0.1", port, headers: { host: "flaky.localhost" }, agent: false }, (res) => resolve(res.resume().statusCode ?? 0))
          .on("error", reject),
      );
    flakyRequests.length = 0;
    expect([await get(), await get()]).toEqual([200, 200]);
    // The second went out on the first's pooled connection, which the app reset, then on a new one.
    expect(flakyRequests).toEqual(Array(3).fill("GET / HTTP/1.1"));
  });

  it("cuts the client's connection when the app breaks off mid-answer, rather than leaving it waiting", async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/break", headers: { host: "app.localhost" }, agent: false, timeout: 5_000 }, (res) => {
        res.resume();
        res.on("end", () => resolve("complete"));
        res.on("error", (error) => resolve(error.message));
      });
      req.on("timeout", () => {
        resolve("left waiting");
        req.destroy();
      });
      req.on("error", (error) => resolve(error.message));
    });
    expect(outcome).toBe("aborted");
  });

  it("closes the app's connection when the client goes away mid-answer, and keeps serving", async () => {
    cutAnswers.length = 0;
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/stream", headers: { host: "app.localhost" }, agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (error) => (error.message === "socket hang up" ? undefined : reject(error)));
    });
    await eventually(() => cutAnswers.length === 1, 5_000, "the app's answer closed");
    expect(cutAnswers).toEqual(["cut"]);
    expect((await send(new http.Agent(), port)).body).toBe("GET / with 0 bytes");
  });

  it("passes a websocket upgrade through beside pooled connections", async () => {
    expect((await send(new http.Agent(), port)).status).toBe(200);
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, headers: { host: "app.localhost", connection: "upgrade", upgrade: "websocket" } });
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
    expect((await send(new http.Agent(), port)).status).toBe(200);
  });
});
