import http from "node:http";

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

/** The pool of connections to apps (the agent's timeout only closes idle ones: a slow answer is not cut). */
export function upstreamAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, timeout: UPSTREAM_IDLE_MS });
}

/** RFC 9110 §9.2.2: repeating one of these has the effect of sending it once. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/**
 * A request sent on a pooled connection the app closed meanwhile (its idle timeout ended as the
 * router reused it, or it restarted) fails before any answer, through no fault of the app: one
 * that is idempotent and has no body (nothing of it was consumed) is sent again on a new
 * connection, as nginx does, rather than answered 502.
 */
export function retriesOnNewConnection(req: http.IncomingMessage, upstreamRequest: http.ClientRequest | undefined, error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  return Boolean(upstreamRequest?.reusedSocket) && (code === "ECONNRESET" || code === "EPIPE") && IDEMPOTENT.has(req.method ?? "") && !hasBody;
}
