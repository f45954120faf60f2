import fs from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import path from "node:path";
import { pipeline } from "node:stream";
import { createProxyServer } from "http-proxy-3";
import type pino from "pino";
import { edgeState, type EdgeState } from "../protocol/edge";
import { LATENCY_BUCKETS_MS } from "../protocol/metrics";
import { readJson, writeJsonAtomic } from "../runtime/shared/files";
import { answerClientError } from "./client-errors";
import { limitConnections, DEFAULT_MAX_CONNECTIONS } from "./connection-limit";
import { createEdge } from "./edge";
import { canBeSentAgain, dropIdleConnections, endToEndHeaders, retriesOnNewConnection, UNREPLAYABLE_REUSE_MS, upstreamAgent } from "./keep-alive";
import { hostnameOf, type Route, type RoutesTable, routesTable, type RouterStats, upstreamKey } from "./routes";
import { asksForWebSocket, httpReaderOf, serveWithoutUpgrade } from "./upgrades";
import { createWakeHolds, WAKE_DEFAULTS, type WakeHoldsOptions } from "./wake-holds";

/**
 * The engine's router: one HTTP port that sends each request (websockets too) to the live
 * release of the service owning its Host, an HTTPS port for custom domains with certificates
 * (SNI picks the certificate), and a control server on a unix socket through which the engine
 * replaces the routing table and the custom domains and reads in-flight counts (for draining)
 * and counters. A sleeping service's requests are held (wake-holds.ts) while the engine, told
 * through the `/wakes` long poll, starts its release again.
 */

export type RouterFiles = { routesFile: string; edgeFile: string; controlSocket: string };

export function routerFiles(home: string): RouterFiles & { dir: string; pidFile: string; logFile: string } {
  const dir = path.join(home, "router");
  return {
    dir,
    routesFile: path.join(dir, "routes.json"),
    /** Holds certificates' private keys: written 0600, like every file of the router. */
    edgeFile: path.join(dir, "edge.json"),
    controlSocket: path.join(dir, "control.sock"),
    pidFile: path.join(dir, "router.pid.json"),
    logFile: path.join(dir, "router.log"),
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function page(res: http.ServerResponse, status: number, title: string, detail: string): void {
  const body = `<!doctype html><title>${status} ${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p>\n`;
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}

/** The page a browser sees while a sleeping service takes long to wake: it reloads itself, so the service shows once up. */
function wakingPage(res: http.ServerResponse, serviceName: string): void {
  const name = escapeHtml(serviceName);
  const body = `<!doctype html><meta http-equiv="refresh" content="2"><title>Waking ${name}</title><h1>Waking ${name}</h1><p>The service was asleep after a while without requests. It is starting; this page reloads by itself.</p>\n`;
  res.writeHead(503, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    "retry-after": "2",
  });
  res.end(body);
}

function acceptsHtml(req: http.IncomingMessage): boolean {
  return (req.headers.accept ?? "").includes("text/html");
}

function rawResponse(socket: net.Socket, status: number, reason: string, detail: string, headers = ""): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n${headers}content-type: text/plain\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(detail)}\r\n\r\n${detail}`,
  );
}

function readBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("error", reject);
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(new Error("body is not JSON"));
      }
    });
  });
}

export async function startRouter(
  options: RouterFiles & {
    port: number;
    host: string;
    httpsPort?: number;
    logger: pino.Logger;
    wake?: Partial<WakeHoldsOptions>;
    /** Connections open at once over the HTTP and HTTPS ports together (connection-limit.ts). */
    maxConnections?: number;
  },
) {
  const { logger } = options;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const wake = { ...WAKE_DEFAULTS, ...options.wake };
  const holds = createWakeHolds(wake);
  const retryAfter = String(Math.ceil(wake.timeoutMs / 1000));
  const lastRequestAt = new Map<string, number>();
  let byHost = new Map<string, Route>();
  let byService = new Map<string, Route>();
  const edge = createEdge();
  const inFlight = new Map<string, number>();
  const websockets = new Map<string, number>();
  const counters = new Map<string, { requests: number; errors: number; latencyMsSum: number; latencyBuckets: number[] }>();

  const apply = (table: RoutesTable) => {
    const next = new Map<string, Route>();
    for (const entry of table.routes) for (const host of entry.hosts) next.set(hostnameOf(host), entry);
    byHost = next;
    byService = new Map(table.routes.map((entry) => [entry.serviceId, entry]));
    // A woken service's held requests go on; so do a service's that no longer sleeps (stopped: they get its 503).
    for (const entry of table.routes) if (!entry.sleeping) holds.release(entry.serviceId);
    for (const serviceId of Object.keys(holds.counts())) if (!byService.has(serviceId)) holds.release(serviceId);
  };
  apply((await readJson(options.routesFile, routesTable)) ?? { routes: [] });
  edge.apply((await readJson(options.edgeFile, edgeState)) ?? { domains: [] });
  /** The route of a host: a generated domain's, or the service's of a verified custom domain. */
  const routeOf = (host: string): Route | undefined => {
    const serviceId = edge.serviceOf(host);
    return serviceId ? byService.get(serviceId) : byHost.get(host);
  };

  const bump = (map: Map<string, number>, key: string, delta: number) => {
    const value = (map.get(key) ?? 0) + delta;
    if (value <= 0) map.delete(key);
    else map.set(key, value);
  };
  const countersOf = (serviceId: string) => {
    let entry = counters.get(serviceId);
    if (!entry)
      counters.set(serviceId, (entry = { requests: 0, errors: 0, latencyMsSum: 0, latencyBuckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) }));
    return entry;
  };

  // Connections to apps are pooled, and each side's keep-alive is its own (keep-alive.ts).
  const agent = upstreamAgent();
  const proxy = createProxyServer({ xfwd: true, agent });
  // Errors are answered in the per-call callbacks; this keeps a stray one from crashing the router.
  proxy.on("error", (error) => logger.warn({ err: error }, "proxy error"));
  /** The request to the app of each client request, to tell whether it went out on a pooled connection. */
  const upstreamRequests = new WeakMap<http.IncomingMessage, http.ClientRequest>();
  proxy.on("proxyReq", (upstreamRequest, req) => upstreamRequests.set(req, upstreamRequest));
  // The router writes the app's answers itself (selfHandleResponse): http-proxy-3 would pass on
  // the app's Connection and Keep-Alive headers, which decide the client's connection in Node.
  proxy.on("proxyRes", (upstreamResponse, _req, res) => {
    res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.statusMessage, endToEndHeaders(upstreamResponse.headers, "response"));
    // An app that breaks off mid-answer cuts the client's connection too: a client left waiting for the rest would hang.
    pipeline(upstreamResponse, res, () => {});
  });

  /** Each connection's latest response: an upgrade served as a plain request is read after it (upgrades.ts). */
  const latestResponses = new WeakMap<net.Socket, http.ServerResponse>();
  const handle = (secure: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    latestResponses.set(req.socket, res);
    if (connections.isRefused(req.socket)) {
      // Soon: places free up as clients let go, idle keep-alive ones within Node's 5 s keepAliveTimeout.
      res.setHeader("retry-after", "1");
      res.setHeader("connection", "close");
      return page(res, 503, "Too many connections", `The router has ${maxConnections} connections open, its most; try again.`);
    }
    const host = hostnameOf(req.headers.host);
    const own = edge.wellKnown(host, req.url ?? "/");
    if (own !== null) {
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(own), "cache-control": "no-store" });
      return res.end(own);
    }
    if (!secure && options.httpsPort && edge.redirectsToHttps(host)) {
      const port = options.httpsPort === 443 ? "" : `:${options.httpsPort}`;
      res.writeHead(308, { location: `https://${host}${port}${req.url ?? "/"}`, "content-length": 0 });
      return res.end();
    }
    const entry = routeOf(host);
    if (!entry && edge.isCustom(host))
      return page(res, 404, "Domain not verified", `The domain ${host} is added to a service on this Slipway but not verified yet.`);
    if (!entry) return page(res, 404, "No service here", `No service on this Slipway has the host ${host || "(none)"}.`);
    lastRequestAt.set(entry.serviceId, Date.now());
    if (!entry.upstream && entry.sleeping) {
      const letGo = holds.hold(entry.serviceId, {
        resume: () => handle(secure)(req, res),
        expire: () => {
          res.setHeader("retry-after", retryAfter);
          page(res, 503, "Service waking up", `The service ${entry.serviceName} did not wake within ${wake.timeoutMs / 1000} s; try again.`);
        },
        ...(acceptsHtml(req) ? { page: () => wakingPage(res, entry.serviceName) } : {}),
      });
      if (!letGo) {
        res.setHeader("retry-after", retryAfter);
        return page(res, 503, "Service waking up", `The service ${entry.serviceName} is waking up with too many requests waiting; try again.`);
      }
      res.once("close", letGo);
      return;
    }
    if (!entry.upstream && entry.neverDeployed)
      return page(res, 503, "Not deployed yet", `The service ${entry.serviceName} has not been deployed successfully yet: see its deployments.`);
    if (!entry.upstream) return page(res, 503, "Service stopped", `The service ${entry.serviceName} has no running release.`);
    const key = upstreamKey(entry.upstream);
    const stats = countersOf(entry.serviceId);
    const started = performance.now();
    stats.requests += 1;
    bump(inFlight, key, 1);
    res.once("close", () => {
      bump(inFlight, key, -1);
      const latency = performance.now() - started;
      stats.latencyMsSum += latency;
      // A fixed histogram: percentiles over any interval come from the difference of two reads.
      const bucket = LATENCY_BUCKETS_MS.findIndex((bound) => latency <= bound);
      stats.latencyBuckets[bucket === -1 ? LATENCY_BUCKETS_MS.length : bucket]! += 1;
      if (res.statusCode >= 500) stats.errors += 1;
    });
    req.headers = endToEndHeaders(req.headers, "request") as http.IncomingHttpHeaders;
    const headers = { ...req.headers };
    const forward = (newConnection: boolean) =>
      proxy.web(req, res, { target: `http://${key}`, selfHandleResponse: true, ...(newConnection ? { agent: false } : {}) }, (error) => {
        if (!newConnection && !res.headersSent && retriesOnNewConnection(req, upstreamRequests.get(req), error)) {
          req.headers = { ...headers }; // as before the first try: http-proxy-3 appends X-Forwarded-* on each
          return forward(true);
        }
        logger.warn({ err: error, host, upstream: key }, "upstream failed");
        if (res.headersSent) return res.destroy();
        page(res, 502, "Bad gateway", `The service ${entry.serviceName} did not answer (${(error as NodeJS.ErrnoException).code ?? error.message}).`);
      });
    // The app may be closing a connection idle this long; a request that cannot be sent again goes on a fresh one.
    if (!canBeSentAgain(req)) dropIdleConnections(agent, entry.upstream, UNREPLAYABLE_REUSE_MS);
    forward(false);
  };
  const server = http.createServer(handle(false));
  // No default certificate: a name without one fails the handshake rather than showing another's.
  const secureServer = options.httpsPort ? https.createServer({ SNICallback: edge.sniCallback }, handle(true)) : null;
  // Before any listener of ours: an upgrade the router does not proxy goes back to these (upgrades.ts).
  const readPlainHttp = httpReaderOf(server);
  const readSecureHttp = secureServer ? httpReaderOf(secureServer) : null;
  const connections = limitConnections({ max: maxConnections, logger, plain: server, secure: secureServer });
  // Unreadable requests, an HTTP/2 client's preface among them, get an answer the client can read (client-errors.ts).
  const midAnswer = (socket: net.Socket) => {
    const latest = latestResponses.get(socket);
    return Boolean(latest?.headersSent && !latest.writableFinished && !latest.destroyed);
  };
  const clientError = (error: Error, socket: net.Socket) => answerClientError(error, socket, midAnswer(socket));
  server.on("clientError", clientError);
  secureServer?.on("clientError", clientError);

  const upgrade = (readHttp: (socket: net.Socket) => void) => (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    if (connections.isRefused(socket)) return rawResponse(socket, 503, "Service Unavailable", `The router has ${maxConnections} connections open, its most.\n`);
    // h2c (curl --http2), TLS/1.0, unknown tokens: answered over HTTP/1.1 as plain requests, as nginx does.
    if (!asksForWebSocket(req)) return serveWithoutUpgrade(readHttp, { req, socket, head, previous: latestResponses.get(socket) });
    const host = hostnameOf(req.headers.host);
    const entry = routeOf(host);
    if (!entry) return rawResponse(socket, 404, "Not Found", `No service on this Slipway has the host ${host}.\n`);
    lastRequestAt.set(entry.serviceId, Date.now());
    if (!entry.upstream && entry.sleeping) {
      const letGo = holds.hold(entry.serviceId, {
        resume: () => upgrade(readHttp)(req, socket, head),
        expire: () => rawResponse(socket, 503, "Service Unavailable", `The service ${entry.serviceName} did not wake in time.\n`),
      });
      if (!letGo) return rawResponse(socket, 503, "Service Unavailable", `The service ${entry.serviceName} has too many requests waiting.\n`);
      socket.once("close", letGo);
      return;
    }
    if (!entry.upstream && entry.neverDeployed)
      return rawResponse(socket, 503, "Service Unavailable", `The service ${entry.serviceName} has not been deployed successfully yet.\n`);
    if (!entry.upstream) return rawResponse(socket, 503, "Service Unavailable", `The service ${entry.serviceName} has no running release.\n`);
    const key = upstreamKey(entry.upstream);
    countersOf(entry.serviceId).requests += 1;
    bump(websockets, key, 1);
    socket.once("close", () => bump(websockets, key, -1));
    proxy.ws(req, socket, head, { target: `http://${key}` }, () => {
      countersOf(entry.serviceId).errors += 1;
      rawResponse(socket, 502, "Bad Gateway", `The service ${entry.serviceName} did not answer.\n`);
    });
  };
  server.on("upgrade", upgrade(readPlainHttp));
  if (secureServer && readSecureHttp) secureServer.on("upgrade", upgrade(readSecureHttp));
  // The router is no forward proxy: a CONNECT gets a refusal (Node would close the connection without a word), never a tunnel.
  const refuseTunnel = (_req: http.IncomingMessage, socket: net.Socket) =>
    rawResponse(
      socket,
      405,
      "Method Not Allowed",
      "The router forwards requests to the services on this Slipway; it opens no tunnels.\n",
      "allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n",
    );
  server.on("connect", refuseTunnel);
  secureServer?.on("connect", refuseTunnel);
  secureServer?.on("tlsClientError", (error) => logger.debug({ err: error }, "TLS handshake failed"));

  const stats = (): RouterStats => ({
    inFlight: Object.fromEntries(inFlight),
    websockets: Object.fromEntries(websockets),
    services: Object.fromEntries([...counters].map(([serviceId, entry]) => [serviceId, { ...entry, lastRequestAt: lastRequestAt.get(serviceId) ?? null }])),
    held: holds.counts(),
  });

  const control = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && req.url === "/health")
      return reply(200, {
        pid: process.pid,
        port: options.port,
        host: options.host,
        httpsPort: options.httpsPort ?? null,
        wakeTimeoutMs: wake.timeoutMs,
        wakePageAfterMs: wake.pageAfterMs,
        maxConnections,
      });
    if (req.method === "GET" && req.url === "/stats") return reply(200, stats());
    // The engine's long poll for wakes: answered at once when a sleeping service has a request waiting, else after 25 s with none.
    // An engine that died leaves its poll behind: what could not reach it is asked again on the next poll (wake-holds.ts).
    if (req.method === "GET" && req.url === "/wakes") {
      const gone = new AbortController();
      res.once("close", () => gone.abort());
      void holds.nextWakes(25_000, gone.signal).then((serviceIds) => {
        if (res.destroyed) return holds.notDelivered(serviceIds);
        // 'close' without 'finish': the connection broke before the answer was out.
        res.once("close", () => {
          if (!res.writableFinished) holds.notDelivered(serviceIds);
        });
        reply(200, { serviceIds });
      });
      return;
    }
    if (req.method === "PUT" && req.url === "/routes") {
      void readBody(req)
        .then(async (body) => {
          const parsed = routesTable.safeParse(body);
          if (!parsed.success) return reply(400, { error: parsed.error.message });
          // Persist first: a router restarted right after this answer must serve the same table.
          await writeJsonAtomic(options.routesFile, parsed.data);
          apply(parsed.data);
          reply(200, { ok: true, routes: parsed.data.routes.length });
        })
        .catch((error: Error) => reply(400, { error: error.message }));
      return;
    }
    if (req.method === "PUT" && req.url === "/edge") {
      void readBody(req)
        .then(async (body) => {
          const parsed = edgeState.safeParse(body);
          if (!parsed.success) return reply(400, { error: parsed.error.message });
          const state: EdgeState = parsed.data;
          try {
            edge.apply(state);
          } catch (error) {
            return reply(400, { error: `a certificate or key is unusable: ${(error as Error).message}` });
          }
          await writeJsonAtomic(options.edgeFile, state);
          reply(200, { ok: true, domains: state.domains.length });
        })
        .catch((error: Error) => reply(400, { error: error.message }));
      return;
    }
    reply(404, { error: "unknown control endpoint" });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  if (secureServer)
    await new Promise<void>((resolve, reject) => {
      secureServer.once("error", reject);
      secureServer.listen(options.httpsPort, options.host, () => resolve());
    });
  await fs.rm(options.controlSocket, { force: true });
  await new Promise<void>((resolve, reject) => {
    control.once("error", reject);
    control.listen(options.controlSocket, () => resolve());
  });
  await fs.chmod(options.controlSocket, 0o600);

  return {
    async close() {
      await Promise.all([
        new Promise((resolve) => server.close(resolve)),
        new Promise((resolve) => (secureServer ? secureServer.close(resolve) : resolve(undefined))),
        new Promise((resolve) => {
          control.close(resolve);
          // The engine's long poll for wakes would hold the close for its 25 s.
          control.closeAllConnections();
        }),
      ]);
      server.closeAllConnections();
      secureServer?.closeAllConnections();
    },
  };
}
