import type { IncomingMessage } from "node:http";

export type JsonBody = { ok: true; value: unknown } | { ok: false; status: 400 | 413 | 415; code: string; message: string };

/** Reads a JSON request body up to `limit` bytes, with the status a client should get when it is not one. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<JsonBody> {
  const type = req.headers["content-type"] ?? "";
  if (!type.toLowerCase().startsWith("application/json")) {
    return { ok: false, status: 415, code: "UNSUPPORTED_MEDIA_TYPE", message: `Send a JSON body with content-type application/json (got "${type}")` };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return { ok: false, status: 413, code: "PAYLOAD_TOO_LARGE", message: `Request body over ${limit} bytes` };
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, status: 400, code: "PARSE_ERROR", message: "Request body is not valid JSON" };
  }
}
