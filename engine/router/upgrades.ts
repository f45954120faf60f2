import http from "node:http";
import https from "node:https";
import type net from "node:net";

/**
 * Upgrades the router does not proxy. Node hands every request that says `Connection: upgrade`
 * to the server's 'upgrade' listener, whatever it asks for, and reads nothing more of its
 * connection: `curl --http2` over plain HTTP (`Upgrade: h2c`), TLS/1.0 (RFC 2817) or a token
 * nobody knows got no answer at all. RFC 9110 §7.8 lets a server ignore an upgrade it does not
 * do and answer over HTTP/1.1, as nginx and HAProxy do: such a request is handed back to Node's
 * HTTP reading without its upgrade headers, and served like any other, its connection kept.
 */

/** Whether the request asks for a websocket: the only upgrade the router passes on to apps. */
export function asksForWebSocket(req: http.IncomingMessage): boolean {
  return (req.headers.upgrade ?? "").split(",").some((token) => token.trim().toLowerCase() === "websocket");
}

/** What asks for an upgrade: the Upgrade header, the `upgrade` token of Connection, and h2c's settings (RFC 7540 §3.2). */
const UPGRADE_HEADERS = new Set(["upgrade", "http2-settings"]);

/** The request's head as the client sent it (names, order and repeats kept), without what asks for an upgrade. */
export function headWithoutUpgrade(req: http.IncomingMessage): Buffer {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let index = 0; index < req.rawHeaders.length; index += 2) {
    const name = req.rawHeaders[index]!;
    const value = req.rawHeaders[index + 1]!;
    const lower = name.toLowerCase();
    if (UPGRADE_HEADERS.has(lower)) continue;
    if (lower === "connection") {
      const kept = value.split(",").filter((token) => token.trim() !== "" && !UPGRADE_HEADERS.has(token.trim().toLowerCase()));
      if (kept.length > 0) lines.push(`${name}: ${kept.map((token) => token.trim()).join(", ")}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  // Node's parser read the head as latin1 (and refused CR, LF and NUL in it): this gives back its bytes.
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
}

/**
 * Node's own listener that reads HTTP off a server's connections: 'connection' on an HTTP server,
 * 'secureConnection' (after the TLS handshake) on an HTTPS one. Taken right after the server is
 * created, before any other listener is added, so it is the only one: re-emitting the event
 * instead would count the connection again where others listen (connection-limit.ts).
 */
export function httpReaderOf(server: http.Server | https.Server): (socket: net.Socket) => void {
  const event = server instanceof https.Server ? "secureConnection" : "connection";
  const listeners = server.listeners(event);
  if (listeners.length !== 1) throw new Error(`expected Node's HTTP listener alone on '${event}', found ${listeners.length}`);
  const [reader] = listeners as Array<(socket: net.Socket) => void>;
  return (socket) => reader!.call(server, socket);
}

/**
 * Serves an upgrade request the router does not proxy as a plain one: its head without the
 * upgrade headers, then what followed it (`head`, the start of a body or of the next request), is
 * put back in front of the connection's unread bytes, and Node's HTTP reading takes the
 * connection up again. The request is then answered by the server's request handler, with
 * `Expect: 100-continue`, bodies, keep-alive and timeouts as for any other. A client that sent it
 * pipelined behind others first gets their answers (`previous`, the last of them): reading again
 * while one is still being written would queue its answer where nothing sends it.
 */
export function serveWithoutUpgrade(
  readHttp: (socket: net.Socket) => void,
  request: { req: http.IncomingMessage; socket: net.Socket; head: Buffer; previous: http.ServerResponse | undefined },
): void {
  const { req, socket, head, previous } = request;
  const readAgain = () => {
    if (socket.destroyed) return;
    socket.unshift(Buffer.concat([headWithoutUpgrade(req), head]));
    readHttp(socket);
  };
  if (!previous || previous.writableFinished || previous.destroyed) return readAgain();
  previous.once("close", readAgain);
}
