import { isUtf8 } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import { eq, sql } from "drizzle-orm";
import type { Services } from "../context";
import { gitConnections } from "../db/schema";
import type { Logger } from "../logger";
import { createDeliveryBatcher, type BatcherOptions, type DeliveryRow } from "./batcher";
import { loadIntakeConnection, type IntakeConnection } from "./connections";
import { repositoryKey } from "../git/repository-url";
import { createFollowedRepositories } from "./followed-repositories";
import { actsOn, deliveryHead, repositoryUrlsOf, storableHeaders, verifySignature } from "./providers";
import { hasUnstorableText, UNSTORABLE_TEXT } from "./storable-text";

export const HOOKS_PREFIX = "/api/hooks/";
/**
 * Larger deliveries are refused with 413. GitHub caps payloads at 25 MB and sends anything up to
 * it (https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap); a push
 * touching thousands of files lists each path in `commits[]` and again in `head_commit`, and
 * passes 1 MiB, so a lower cap loses pushes (providers do not retry a 4xx).
 *
 * Memory: a body is read only once its connection is known to exist, up to this size; the
 * batcher keeps each row's body (not its parsed payload) only until its batch commits, one
 * statement later. What all deliveries being answered hold at once is BODIES_HELD_MAX_BYTES.
 */
export const MAX_DELIVERY_BYTES = 25 * 1024 * 1024;
/**
 * The most body bytes held at once, across the deliveries being answered. A body is read whole
 * before its signature can be checked, so without this bound anyone who knows a webhook URL could
 * make the process hold 25 MiB per request they keep open. Past it a delivery is answered 503
 * (providers offer a redelivery); ordinary traffic (a push is a few kB) never comes near it.
 */
export const BODIES_HELD_MAX_BYTES = 4 * MAX_DELIVERY_BYTES;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type IntakeOptions = {
  logger?: Logger;
  /**
   * How long a connection (with its decrypted secret) and an organization's followed
   * repositories are served from memory; changes notified by other processes take effect at once,
   * a lost notification within this. A delivery signed with a secret rotated away is never
   * stored, whatever the cache holds: the insert compares secrets (server/webhooks/batcher.ts).
   */
  cacheMs?: number;
  /**
   * A refused signature is checked again against the connection read anew when the cached copy
   * is older than this (its secret may have been rotated by a process whose notice has not
   * arrived): a flood of bad signatures costs at most one read per connection this often.
   */
  rereadOnRefusalMs?: number;
  batch?: BatcherOptions;
  /** How often counts of refused deliveries are added to their connection's row. */
  rejectFlushMs?: number;
  /** BODIES_HELD_MAX_BYTES unless given. */
  bodiesHeldMaxBytes?: number;
};

type Answer = { status: number; body: Record<string, unknown>; close?: boolean };

/**
 * `POST /api/hooks/<connection id>`: the webhook intake. Verifies the delivery the provider's
 * way, stores it (de-duplicated by the provider's delivery id) and answers 202 only once the row
 * is committed; matching services and deploying happen in the process_webhooks task. A delivery
 * with a bad signature is never stored: it is counted on its connection and logged.
 */
export function createWebhookIntake(services: Services, options: IntakeOptions = {}) {
  const cacheMs = options.cacheMs ?? 10_000;
  const rereadOnRefusalMs = options.rereadOnRefusalMs ?? 1_000;
  const logger = options.logger;
  const batcher = createDeliveryBatcher(services.db, options.batch);
  const followed = createFollowedRepositories(services, { cacheMs: options.cacheMs });
  const cache = new Map<string, { loadedAt: number; connection: Promise<IntakeConnection | null> }>();
  const rejected = new Map<string, number>();

  /** The connection, from the cache unless its copy there is `maxAgeMs` old or older. */
  async function connectionFor(id: string, maxAgeMs = cacheMs): Promise<IntakeConnection | null> {
    const now = Date.now();
    const cached = cache.get(id);
    if (cached && now - cached.loadedAt < maxAgeMs) return cached.connection;
    // Concurrent requests for one connection share one lookup.
    const entry = { loadedAt: now, connection: loadIntakeConnection(services, id) };
    cache.set(id, entry);
    entry.connection.catch(() => cache.get(id) === entry && cache.delete(id));
    if (cache.size > 10_000) for (const [key, old] of cache) if (now - old.loadedAt >= cacheMs) cache.delete(key);
    return entry.connection;
  }

  /**
   * The connection read anew, because `used` (a copy from the cache) may be out of date; the
   * requests that find it so at once share one read.
   */
  async function reread(used: IntakeConnection): Promise<IntakeConnection | null> {
    const cached = cache.get(used.id);
    if (cached && (await cached.connection) !== used) return cached.connection;
    return connectionFor(used.id, 0);
  }

  /**
   * The connection whose current secret signed the delivery; "refused" when it does not match;
   * null when the connection is gone. A refusal by a copy cached a while ago is checked again
   * against the connection read anew.
   */
  async function signer(
    used: IntakeConnection,
    body: Buffer,
    headers: IncomingMessage["headers"],
    recheck: boolean,
  ): Promise<IntakeConnection | "refused" | null> {
    if (verifySignature(used.provider, used.secret, body, headers)) return used;
    const loadedAt = cache.get(used.id)?.loadedAt ?? 0;
    if (!recheck || Date.now() - loadedAt < rereadOnRefusalMs) return "refused";
    const current = await reread(used);
    if (!current) return null;
    return current.sealedSecret !== used.sealedSecret && verifySignature(current.provider, current.secret, body, headers) ? current : "refused";
  }

  async function someFollowed(organizationId: string, keys: string[]): Promise<boolean> {
    for (const key of keys) if (await followed.follows(organizationId, key)) return true;
    return false;
  }

  const refuse = (connection: IntakeConnection, req: IncomingMessage): Answer => {
    rejected.set(connection.id, (rejected.get(connection.id) ?? 0) + 1);
    logger?.warn(
      { connectionId: connection.id, provider: connection.provider, ip: req.socket.remoteAddress },
      "webhook delivery refused: bad or missing signature",
    );
    return { status: 401, body: { message: "Signature does not match" } };
  };
  const unknown: Answer = { status: 404, body: { message: "Unknown webhook" } };

  const flushRejected = async () => {
    for (const [connectionId, count] of [...rejected]) {
      rejected.delete(connectionId);
      await services.db
        .update(gitConnections)
        .set({ rejectedDeliveries: sql`${gitConnections.rejectedDeliveries} + ${count}`, lastRejectedAt: new Date() })
        .where(eq(gitConnections.id, connectionId))
        .catch((error: unknown) => logger?.warn({ err: error }, "could not record refused webhook deliveries"));
    }
  };
  const rejectTimer = setInterval(() => void flushRejected(), options.rejectFlushMs ?? 5_000);
  rejectTimer.unref();

  /** Body bytes held by the deliveries being answered, and how many may be. */
  let bodiesHeld = 0;
  const bodiesHeldMax = options.bodiesHeldMaxBytes ?? BODIES_HELD_MAX_BYTES;

  async function answer(req: IncomingMessage, connectionId: string, held: { bytes: number }): Promise<Answer> {
    if (req.method !== "POST") return { status: 405, body: { message: "Webhooks are delivered with POST" } };
    if (!UUID.test(connectionId)) return unknown;
    const cached = await connectionFor(connectionId.toLowerCase());
    if (!cached) return unknown;

    const type = (req.headers["content-type"] ?? "").toLowerCase();
    if (!/^application\/json\s*(;|$)/.test(type)) return { status: 415, body: { message: "Configure the webhook to send application/json" } };
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > MAX_DELIVERY_BYTES) return { status: 413, body: { message: `Deliveries over ${MAX_DELIVERY_BYTES} bytes are refused` }, close: true };
    const body = await readBody(req, MAX_DELIVERY_BYTES, (bytes) => {
      if (bodiesHeld + bytes > bodiesHeldMax) return false;
      bodiesHeld += bytes;
      held.bytes += bytes;
      return true;
    });
    if (body === "too-large") return { status: 413, body: { message: `Deliveries over ${MAX_DELIVERY_BYTES} bytes are refused` }, close: true };
    if (body === "busy") return { status: 503, body: { message: "Too many large deliveries are being received at once; retry later" }, close: true };
    if (body === "aborted") return { status: 400, body: { message: "The request body ended early" } };
    // JSON is UTF-8 (RFC 8259); anything else could not be stored as text.
    if (!isUtf8(body)) return { status: 400, body: { message: "The body is not UTF-8" } };

    let connection = await signer(cached, body, req.headers, true);
    if (connection === null) return unknown;
    if (connection === "refused") return refuse(cached, req);

    const text = body.toString("utf8");
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      return { status: 400, body: { message: "The body is not valid JSON" } };
    }
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) return { status: 400, body: { message: "The body must be a JSON object" } };
    // Refused before it joins a batch, whose insert it would fail for every delivery in it.
    if (hasUnstorableText(text, payload)) return { status: 400, body: { message: UNSTORABLE_TEXT } };
    const head = deliveryHead(connection.provider, req.headers, body);
    if (!head) return { status: 400, body: { message: "The delivery id or event header is missing" } };

    const acted = actsOn(connection.provider, head.event, payload);
    const keys = repositoryKeysOf(repositoryUrlsOf(connection.provider, payload));
    // What no service can concern is settled here, as cheaply as an ignored event: no worker run
    // reads it back. A service may name the repository by any of the payload's URLs (a GitLab
    // under a path, or with its own SSH host, gives its HTTPS and SSH URLs different keys).
    const unfollowed = acted && keys.length > 0 && !(await someFollowed(connection.organizationId, keys));
    // The worker settles rows by this column alone, so it is set only when one key decides.
    const repository = keys.length === 1 ? keys[0]! : null;
    const status = !acted ? "IGNORED" : unfollowed ? "PROCESSED" : "PENDING";
    const row: Omit<DeliveryRow, "organizationId" | "connectionId" | "sealedSecret"> = {
      deliveryId: head.deliveryId,
      event: head.event,
      repository,
      headers: storableHeaders(req.headers),
      body,
      status,
    };
    let stored = await batcher.add({ ...row, organizationId: connection.organizationId, connectionId: connection.id, sealedSecret: connection.sealedSecret });
    if (stored.outcome === "stale") {
      // The secret was rotated (or the connection deleted) since it was read: verified again
      // against the current one, and stored if that signed it.
      const current = await reread(connection);
      if (!current) return unknown;
      connection = await signer(current, body, req.headers, false);
      if (connection === "refused") return refuse(current, req);
      if (connection === null) return unknown;
      stored = await batcher.add({ ...row, organizationId: connection.organizationId, connectionId: connection.id, sealedSecret: connection.sealedSecret });
      if (stored.outcome === "stale") throw new Error("the connection's secret changed twice while a delivery was stored");
    }
    if (stored.outcome === "duplicate") return { status: 202, body: { status: "duplicate" } };
    return { status: 202, body: { status: { IGNORED: "ignored", PROCESSED: "unfollowed", PENDING: "queued" }[status], id: stored.id } };
  }

  return {
    stats: batcher.stats,
    /** Drops a cached connection (its secret was rotated or it was deleted). */
    forget(connectionId: string) {
      cache.delete(connectionId);
    },
    /** Drops an organization's followed repositories (one of its services changed). */
    forgetRepositories(organizationId: string) {
      followed.forget(organizationId);
    },
    /** Handles the request when its path is under /api/hooks/; false otherwise. */
    async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
      const url = req.url ?? "/";
      if (!url.startsWith(HOOKS_PREFIX)) return false;
      const connectionId = url.slice(HOOKS_PREFIX.length).split(/[?#/]/)[0] ?? "";
      let result: Answer;
      const held = { bytes: 0 };
      try {
        result = await answer(req, connectionId, held);
      } catch (error) {
        logger?.error({ err: error, connectionId }, "webhook delivery could not be stored");
        result = { status: 503, body: { message: "The delivery could not be stored; retry later" } };
      } finally {
        // Answered: its row is committed (or refused), and the batcher let go of the body.
        bodiesHeld -= held.bytes;
      }
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (result.close) headers.connection = "close";
      if (result.status === 405) headers.allow = "POST";
      res.writeHead(result.status, headers).end(JSON.stringify(result.body));
      return true;
    },
    async close() {
      clearInterval(rejectTimer);
      await batcher.drain();
      await flushRejected();
    },
  };
}

/** The distinct keys of a payload's repository URLs, cut to what the column stores. */
function repositoryKeysOf(urls: string[]): string[] {
  return [...new Set(urls.flatMap((url) => repositoryKey(url)?.slice(0, 500) ?? []))];
}

/**
 * The body up to `limit` bytes; stops reading (and lets the connection close) past it, or when
 * `hold` refuses to hold another chunk.
 */
function readBody(req: IncomingMessage, limit: number, hold: (bytes: number) => boolean): Promise<Buffer | "too-large" | "busy" | "aborted"> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (why: "too-large" | "busy") => {
      cleanup();
      req.pause();
      resolve(why);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return stop("too-large");
      if (!hold(chunk.length)) return stop("busy");
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onAborted = () => {
      cleanup();
      resolve("aborted");
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAborted);
      req.off("aborted", onAborted);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onAborted);
    req.on("aborted", onAborted);
  });
}
