import http from "node:http";
import type stream from "node:stream";

/**
 * Keep-alive on each side of the router, as nginx, HAProxy or Caddy do it: a client's connection
 * stays open or closes by that client's own request (HTTP/1.1 unless `Connection: close`,
 * HTTP/1.0 with `Connection: keep-alive`), whatever the app does with its connection to the
 * router, and the router reuses its connections to apps instead of opening one per request.
 * What concerns one connection (RFC 9110 §7.6.1, hop-by-hop headers) is therefore never
 * forwarded: an app's `Connection: close` closed every client's connection after one response,
 * and the router's own `Connection: close` to apps made every app answer with one.
 */

/** RFC 9110 §7.6.1's hop-by-hop headers, with the non-standard Keep-Alive and Proxy-Connection; Connection may name more. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/**
 * `headers` without those about one connection. A request keeps its Transfer-Encoding: Node's
 * client frames the body it forwards by it (without it a GET's chunked body would go out unframed).
 */
export function endToEndHeaders(headers: http.IncomingHttpHeaders, keep: "request" | "response"): http.OutgoingHttpHeaders {
  const named = (headers.connection ?? "").split(",").map((token) => token.trim().toLowerCase());
  const dropped = new Set([...HOP_BY_HOP, ...named].filter((name) => !(keep === "request" && name === "transfer-encoding")));
  const result: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !dropped.has(name)) result[name] = value;
  return result;
}

/**
 * How long a connection to an app stays pooled unused. Below the keep-alive timeouts of common
 * app servers (Node's and uvicorn's 5 s), so the router lets go of an idle connection before the
 * app does; an app that announces a shorter one (`Keep-Alive: timeout=N`) is left a second
 * earlier still (Node's agent reads it). A release being replaced gets no new requests once the
 * router switched, and its pooled connections close with it.
 */
export const UPSTREAM_IDLE_MS = 4_000;

/**
 * How long a pooled connection may have been idle and still carry a request that cannot be sent
 * again (a POST, anything with a body): an app that announces no keep-alive timeout may close its
 * idle connections sooner than UPSTREAM_IDLE_MS (gunicorn's threaded workers after 2 s, a Node app
 * that sets its own `Connection` header with a short keepAliveTimeout), and such a request sent on
 * one the app closes in the same instant is lost, answered 502. Older idle connections are let go
 * and a new one opened for it: a connect on the same host costs far less than a lost POST.
 */
export const UNREPLAYABLE_REUSE_MS = 1_000;

/** When each pooled connection to an app went back to the pool: the app's idle timer runs from about then. */
const pooledAt = new WeakMap<stream.Duplex, number>();

/** Node's agent, noting when it pools a connection (keepSocketAlive is its documented hook for that). */
class UpstreamAgent extends http.Agent {
  override keepSocketAlive(socket: stream.Duplex) {
    pooledAt.set(socket, performance.now());
    // Typed void, but Node reads the result: false (an app's `Keep-Alive: timeout=1`) closes the socket instead.
    return super.keepSocketAlive(socket);
  }
}

/** The pool of connections to apps (the agent's timeout only closes idle ones: a slow answer is not cut). */
export function upstreamAgent(): http.Agent {
  return new UpstreamAgent({ keepAlive: true, timeout: UPSTREAM_IDLE_MS });
}

/** Closes the pooled connections to `upstream` idle for `idleMs` or more, so that the next request through `agent` opens a new one. */
export function dropIdleConnections(agent: http.Agent, upstream: { host: string; port: number }, idleMs: number): void {
  const now = performance.now();
  for (const socket of agent.freeSockets[agent.getName(upstream)] ?? []) if (now - (pooledAt.get(socket) ?? -Infinity) >= idleMs) socket.destroy();
}

/** RFC 9110 §9.2.2: repeating one of these has the effect of sending it once. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** Whether sending the request twice does what sending it once does, and nothing of it is consumed by a first try. */
export function canBeSentAgain(req: http.IncomingMessage): boolean {
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  return IDEMPOTENT.has(req.method ?? "") && !hasBody;
}

/**
 * A request sent on a pooled connection the app closed meanwhile (its idle timeout ended as the
 * router reused it, or it restarted) fails before any answer, through no fault of the app: one
 * that is idempotent and has no body (nothing of it was consumed) is sent again on a new
 * connection, as nginx does, rather than answered 502.
 */
export function retriesOnNewConnection(req: http.IncomingMessage, upstreamRequest: http.ClientRequest | undefined, error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return Boolean(upstreamRequest?.reusedSocket) && (code === "ECONNRESET" || code === "EPIPE") && canBeSentAgain(req);
}
