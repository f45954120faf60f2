import type net from "node:net";
import type pino from "pino";

/**
 * The bound on the connections the router holds open at once, over its HTTP and HTTPS ports
 * together (SLIPWAY_ROUTER_MAX_CONNECTIONS). Node's timeouts bound how long each slow client may
 * take, not how many there are: without a bound, enough idle or trickling clients exhaust the
 * router's file descriptors and memory, and every app behind it goes down with it. Each proxied
 * connection costs the router two descriptors (the client's and the app's).
 */
export const DEFAULT_MAX_CONNECTIONS = 4096;

/**
 * How long a connection over the bound may take to send its request, which is answered 503: a
 * client that sends none must not hold a descriptor for Node's header timeout (a minute).
 */
const REFUSED_LINGER_MS = 1_000;

/** How often the router says that it refuses connections, with how many it refused meanwhile. */
const REFUSED_LOG_EVERY_MS = 60_000;

/**
 * Counts the connections of the router's servers and refuses those over `max`. A plain HTTP one
 * is answered `503` (with `Retry-After`) once its request is in, by the request handlers asking
 * `isRefused`; an HTTPS one is closed at once, as answering it would take a TLS handshake first.
 * A connection that closes frees its place: the router serves again as soon as clients let go.
 */
export function limitConnections(options: { max: number; logger: pino.Logger; plain: net.Server; secure: net.Server | null }) {
  const { max, logger } = options;
  let open = 0;
  const refused = new WeakSet<net.Socket>();
  let refusedSinceLog = 0;
  let loggedAt = -Infinity;

  const noteRefusal = () => {
    refusedSinceLog += 1;
    if (Date.now() - loggedAt < REFUSED_LOG_EVERY_MS) return;
    logger.warn({ maxConnections: max, refused: refusedSinceLog }, "connection limit reached: refusing new connections until some close");
    loggedAt = Date.now();
    refusedSinceLog = 0;
  };

  const onConnection = (secure: boolean) => (socket: net.Socket) => {
    if (open < max) {
      open += 1;
      socket.once("close", () => (open -= 1));
      return;
    }
    noteRefusal();
    if (secure) return socket.destroy();
    refused.add(socket);
    const linger = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
    socket.once("close", () => clearTimeout(linger));
  };
  options.plain.on("connection", onConnection(false));
  options.secure?.on("connection", onConnection(true));

  return {
    /** True for a connection over the bound: its request gets the refusal, nothing else. */
    isRefused: (socket: net.Socket) => refused.has(socket),
  };
}
