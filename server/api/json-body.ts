import type { IncomingMessage } from "node:http";

export type JsonBody =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; code: "UNSUPPORTED_MEDIA_TYPE" | "PAYLOAD_TOO_LARGE" | "PARSE_ERROR" | "BAD_REQUEST"; message: string };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a request body that must be a JSON object (the fields of an operation's input) of at
 * most `limit` bytes; an empty body is an empty object. The codes are tRPC's: 415, 413, 400, 400.
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<JsonBody> {
  // Required even for an empty body: a form on another site can POST with the session cookie, never as application/json.
  const type = req.headers["content-type"] ?? "";
  if (!type.toLowerCase().startsWith("application/json")) {
    return { ok: false, code: "UNSUPPORTED_MEDIA_TYPE", message: `Send a JSON body with content-type application/json (got "${type}")` };
  }
  const bytes = await readUpTo(req, limit);
  if (bytes === "TOO_LARGE") return { ok: false, code: "PAYLOAD_TOO_LARGE", message: `Request body over ${limit} bytes` };
  if (bytes === "ABORTED") return { ok: false, code: "BAD_REQUEST", message: "The request body ended before it was complete" };
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    // Decoded leniently, the bad bytes would become U+FFFD: a silent change of what was sent.
    return { ok: false, code: "PARSE_ERROR", message: "Request body is not valid UTF-8" };
  }
  if (text.trim() === "") return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: "PARSE_ERROR", message: "Request body is not valid JSON" };
  }
  // An array, a string or null spread into the input would become nothing, or index keys: refused instead.
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
    return { ok: false, code: "BAD_REQUEST", message: `The request body must be a JSON object, not ${kind}` };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * The body's bytes, or TOO_LARGE as soon as it passes `limit`. Past the limit the rest is read
 * and dropped, not refused by destroying the request: that destroys the socket too, and the
 * client (or the next request it sent on that keep-alive connection) got a connection reset
 * instead of the 413. Node's request timeout bounds how long a body can keep coming.
 */
function readUpTo(req: IncomingMessage, limit: number): Promise<Buffer | "TOO_LARGE" | "ABORTED"> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (result: Buffer | "TOO_LARGE" | "ABORTED") => {
      req.off("data", onData).off("end", onEnd).off("close", onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else {
        stop("TOO_LARGE");
        // Flowing with no listener: the rest of the body is discarded as it arrives.
        req.resume();
      }
    };
    const onEnd = () => stop(Buffer.concat(chunks));
    const onClose = () => stop("ABORTED");
    req.on("data", onData).on("end", onEnd).on("close", onClose);
  });
}
