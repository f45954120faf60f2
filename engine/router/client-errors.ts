import type net from "node:net";

/**
 * What the router answers a connection whose bytes are no HTTP/1.1 request Node can read.
 *
 * An HTTP/2 client with prior knowledge (`curl --http2-prior-knowledge`, gRPC clients on plain
 * HTTP) opens with the preface `PRI * HTTP/2.0` (RFC 9113 §3.4). Node stops reading there
 * (HPE_PAUSED_H2_UPGRADE) and, left to itself, writes an HTTP/1.1 400 the client cannot read and
 * destroys the connection while the client's frames are still unread, which resets it: the client
 * saw the connection close without any answer. The router answers in HTTP/2, the one thing such a
 * client reads: its connection preface, then GOAWAY with HTTP_1_1_REQUIRED (curl prints `received
 * GOAWAY, error=13`), and ends the connection gracefully so the answer arrives. It does not serve
 * h2c itself: its apps speak HTTP/1.1, browsers use HTTP/2 only over TLS, and a second protocol
 * stack on the plain port would be a second set of limits, timeouts and counters to keep right.
 *
 * Every other unreadable request gets Node's own answer (its default when no 'clientError'
 * listener exists, which this listener replaces).
 */

/** How long an answered HTTP/2 client may take to close its end before the router closes the connection. */
const LINGER_MS = 1_000;

/** GOAWAY's debug data (RFC 9113 §6.8): for diagnostics only, but Go's client, for one, puts it in its error. */
const HTTP2_REFUSAL_TEXT = "This router speaks HTTP/1.1 (and HTTP/1.0): send the request again without HTTP/2 prior knowledge.";

/** An HTTP/2 frame on stream 0 (RFC 9113 §4.1): 24-bit length, type, flags, 31-bit stream id, payload. */
function connectionFrame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  return Buffer.concat([header, payload]);
}

const SETTINGS = 0x4;
const GOAWAY = 0x7;
/** RFC 9113 §7: "the endpoint requires that HTTP/1.1 be used instead of HTTP/2". */
const HTTP_1_1_REQUIRED = 0xd;

/**
 * The server's connection preface, an empty SETTINGS frame (RFC 9113 §3.4), then GOAWAY (§6.8):
 * last stream 0, as no stream was processed (the client may send its requests again elsewhere),
 * the error code, and the text.
 */
const HTTP2_REFUSAL = (() => {
  const goaway = Buffer.alloc(8);
  goaway.writeUInt32BE(0, 0);
  goaway.writeUInt32BE(HTTP_1_1_REQUIRED, 4);
  return Buffer.concat([connectionFrame(SETTINGS, Buffer.alloc(0)), connectionFrame(GOAWAY, Buffer.concat([goaway, Buffer.from(HTTP2_REFUSAL_TEXT)]))]);
})();

/** Node's answers by parse error, as its own default sends them. */
const STATUS_BY_CODE: Record<string, string> = {
  HPE_HEADER_OVERFLOW: "431 Request Header Fields Too Large",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "413 Payload Too Large",
  ERR_HTTP_REQUEST_TIMEOUT: "408 Request Timeout",
};

const answered = new WeakSet<net.Socket>();

function refuseHttp2(socket: net.Socket): void {
  // Node's parser reports each further chunk of the client's frames again: one answer is enough.
  if (answered.has(socket)) return;
  answered.add(socket);
  if (!socket.writable) return void socket.destroy();
  socket.end(HTTP2_REFUSAL);
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once("close", () => clearTimeout(linger));
}

/**
 * The server's 'clientError' listener. `midAnswer`: an answer on the connection has started, so
 * nothing more may be written on it (the client would read it as the rest of that answer).
 */
export function answerClientError(error: Error, socket: net.Socket, midAnswer: boolean): void {
  const code = (error as NodeJS.ErrnoException).code ?? "";
  if (code === "HPE_PAUSED_H2_UPGRADE" && !midAnswer) return refuseHttp2(socket);
  if (socket.writable && !midAnswer) socket.write(`HTTP/1.1 ${STATUS_BY_CODE[code] ?? "400 Bad Request"}\r\nConnection: close\r\n\r\n`);
  socket.destroy(error);
}
