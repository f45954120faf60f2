import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testPort } from "../../test/support/ports";
import { routerClient } from "./router-process";
import { routerFiles, startRouter } from "./router-server";

const run = promisify(execFile);

/** One request through the router on a client connection of its own: its status. */
function send(port: number, host: string, options: { method?: string; path?: string; body?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      agent: false,
      method: options.method ?? "GET",
      path: options.path ?? "/",
      headers: { host },
      timeout: 5_000,
    });
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Writes raw bytes on a connection of its own (the second part a little later): all that came back until the router closed it. */
function exchange(port: number, first: Buffer | string, then?: Buffer | string): Promise<{ received: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => resolve({ received: Buffer.concat(chunks), closed: true }));
    socket.on("connect", () => {
      socket.write(first);
      if (then) setTimeout(() => socket.writable && socket.write(then), 50);
    });
    setTimeout(() => {
      resolve({ received: Buffer.concat(chunks), closed: false });
      socket.destroy();
    }, 3_000);
  });
}

type Frame = { length: number; type: number; flags: number; streamId: number; payload: Buffer };

/** The HTTP/2 frames in `bytes` (RFC 9113 §4.1); throws on bytes that are not whole frames, an HTTP/1.1 answer for one. */
function http2Frames(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  for (let offset = 0; offset < bytes.length;) {
    if (bytes.length - offset < 9) throw new Error(`not HTTP/2 frames: ${JSON.stringify(bytes.toString("latin1"))}`);
    const length = bytes.readUIntBE(offset, 3);
    const end = offset + 9 + length;
    if (end > bytes.length) throw new Error(`not HTTP/2 frames: ${JSON.stringify(bytes.toString("latin1"))}`);
    const [type, flags] = [bytes[offset + 3]!, bytes[offset + 4]!];
    frames.push({ length, type, flags, streamId: bytes.readUInt32BE(offset + 5) & 0x7fffffff, payload: bytes.subarray(offset + 9, end) });
    offset = end;
  }
  return frames;
}

/**
 * An app as gunicorn's threaded workers or a Node app setting its own `Connection` header are:
 * keep-alive with an idle timeout it does not announce (1 s), so the router's pool keeps its
 * connections longer. A request arriving on a connection idle that long meets the instant the app
 * closes it: the app resets it unread, deterministically, where a real one does it when the
 * request and its idle timer cross.
 */
function unannouncedTimeoutApp(idleTimeoutMs: number) {
  const requests: string[] = [];
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    let answeredAt = performance.now();
    let buffered = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      if (buffered.length === 0 && performance.now() - answeredAt >= idleTimeoutMs) return socket.resetAndDestroy();
      buffered = Buffer.concat([buffered, chunk]);
      const headEnd = buffered.indexOf("\r\n\r\n");
      if (headEnd === -1) return;
      const head = buffered.subarray(0, headEnd).toString("latin1");
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < headEnd + 4 + length) return;
      buffered = Buffer.alloc(0);
      const requestLine = head.split("\r\n")[0]!;
      requests.push(requestLine);
      const body = `${requestLine} with ${length} bytes`;
      socket.write(`HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: ${body.length}\r\n\r\n${body}`, () => (answeredAt = performance.now()));
    });
  });
  return { server, requests, connections: () => connections };
}

/**
 * Where HTTP/1.1 through a pool of connections, and a client speaking another protocol, could
 * lose a request or leave the client guessing: a POST on a pooled connection the app is closing,
 * and the HTTP/2 preface of a client with prior knowledge.
 */
describe("router: pooled connections and HTTP/2 clients", () => {
  let home: string;
  let port: number;
  let router: Awaited<ReturnType<typeof startRouter>>;
  let app: http.Server;
  const unannounced = unannouncedTimeoutApp(1_000);
  const appPort = (server: net.Server) => (server.address() as net.AddressInfo).port;

  beforeAll(async () => {
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-protocol-gaps-")));
    await fs.mkdir(routerFiles(home).dir, { recursive: true });
    port = await testPort();
    app = http.createServer((_req, res) => res.end("ok"));
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => unannounced.server.listen(0, "127.0.0.1", resolve));
    router = await startRouter({ ...routerFiles(home), port, host: "127.0.0.1", logger: pino({ level: "silent" }) });
    await routerClient(home).putRoutes({
      routes: [
        { serviceId: "s-app", serviceName: "app", hosts: ["app.localhost"], upstream: { host: "127.0.0.1", port: appPort(app) } },
        { serviceId: "s-idle", serviceName: "idle", hosts: ["idle.localhost"], upstream: { host: "127.0.0.1", port: appPort(unannounced.server) } },
      ],
    });
  });

  afterAll(async () => {
    app.closeAllConnections();
    app.close();
    unannounced.server.close();
    await router?.close();
    await fs.rm(home, { recursive: true, force: true });
  });

  it("does not send a POST on a pooled connection idle long enough for the app to be closing it", async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(await send(port, "idle.localhost")).toBe(200);
      // Past the app's unannounced 1 s, well within the router's own 4 s pool timeout.
      await sleep(1_200);
      statuses.push(await send(port, "idle.localhost", { method: "POST", path: "/order", body: "one order" }));
    }
    expect(statuses).toEqual([200, 200, 200]);
    expect(unannounced.requests.filter((line) => line.startsWith("POST"))).toEqual(Array(3).fill("POST /order HTTP/1.1"));
    // A connection just used still carries a POST: the pool stays a pool.
    const before = unannounced.connections();
    expect(await send(port, "idle.localhost")).toBe(200);
    expect(await send(port, "idle.localhost", { method: "POST", path: "/order", body: "another" })).toBe(200);
    expect(unannounced.connections() - before).toBe(0);
  });

  it("answers an HTTP/2 client with prior knowledge in HTTP/2: GOAWAY, HTTP/1.1 required, and closes", async () => {
    const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // A SETTINGS frame, as the client's connection preface continues (RFC 9113 §3.4).
    const settings = Buffer.from([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
    const answered = await exchange(port, preface, settings);
    const frames = http2Frames(answered.received);
    // The server's preface, an empty SETTINGS frame, then GOAWAY (RFC 9113 §6.8) on stream 0.
    expect(frames.map(({ type, flags, streamId, length }) => ({ type, flags, streamId, length: type === 7 ? "any" : length }))).toEqual([
      { type: 4, flags: 0, streamId: 0, length: 0 },
      { type: 7, flags: 0, streamId: 0, length: "any" },
    ]);
    const goaway = frames[1]!.payload;
    expect({ lastStreamId: goaway.readUInt32BE(0), errorCode: goaway.readUInt32BE(4) }).toEqual({ lastStreamId: 0, errorCode: 0xd }); // HTTP_1_1_REQUIRED
    expect(goaway.subarray(8).toString("utf8")).toMatch(/^This router speaks HTTP\/1\.1/);
    expect(answered.closed).toBe(true);
    // curl reads it as HTTP/2 and says why, at once.
    const curl = await run("curl", ["-sS", "-v", "--http2-prior-knowledge", "--max-time", "5", `http://127.0.0.1:${port}/`]).then(
      () => ({ exitCode: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => ({ exitCode: error.code, stderr: error.stderr }),
    );
    // curl 7.88 spells it "recveived"; 13 is HTTP_1_1_REQUIRED.
    expect(curl.stderr).toMatch(/GOAWAY, error=13/);
    expect(curl.exitCode).toBe(16); // an HTTP/2 error, not 28 (timed out) nor 52 (empty reply)
    // The router serves on.
    expect(await send(port, "app.localhost", { path: "/after" })).toBe(200);
  });
});
