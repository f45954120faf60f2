import type { IncomingMessage } from "node:http";
import type { AuthConfig } from "@auth/core";
import { eq } from "drizzle-orm";
import type { Namespace, Server } from "socket.io";
import { hasRole, type Actor } from "../auth/actor";
import { fromOwnOrigin } from "../auth/origin";
import { clientAddress, type AuthLimits } from "../auth/rate-limits";
import { stampEndedBy } from "../auth/session-stamp";
import { currentMemberActor, sessionOf } from "../auth/sessions";
import { hashToken } from "../auth/tokens";
import type { Services } from "../context";
import { users } from "../db/schema";
import { getDeployment } from "../deployments/queries";
import { getEnvironment } from "../environments/environments";
import { AppError, isAppError } from "../errors";
import type { Logger } from "../logger";
import { environmentLiveStatus } from "../overview/live-status";
import { getService } from "../services/services";
import { parseAccessNotice } from "./access-channel";
import { serialByKey } from "./serial-by-key";
import { authenticateApiToken, currentTokenActor } from "../tokens/api-tokens";
import {
  ACCESS_ENDED,
  organizationRoom,
  subscribeMessage,
  UI_NAMESPACE,
  type AccessEnded,
  type DeploymentAnnounced,
  type HandshakeRefusal,
  type LogLines,
  type RoomName,
  type ServiceChanged,
  type UiClientEvents,
  type UiServerEvents,
} from "./ui-protocol";

/** Over how long a process's clients are told to re-read after a gap in its notifications. */
const RESYNC_SPREAD_MS = 3_000;

/** Notifications can be lost while the listener reconnects: every socket is re-checked this often as well. */
const ACCESS_RECHECK_MS = 60_000;
/** The longest delay setTimeout keeps (a longer one fires at once): a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * What a `/ui` socket signed in with, kept to re-check it against the current state: the member
 * behind a session cookie with the cookie's stamp (the session is over once the account's password
 * changed: server/auth/session-stamp.ts), the session's id (a sign-out names it) and the cookie's
 * expiry, or the hash of an API token (never the token itself).
 *
 * The socket knows only the cookie it connected with: one that Auth.js renewed since is not its,
 * so it ends at its own cookie's expiry, and the dashboard reconnects with the renewed cookie.
 */
type Credential =
  { kind: "session"; userId: string; organizationId: string; stamp: string; sessionId?: string; expiresAt: number } | { kind: "token"; tokenHash: string };
/** `ended`: why its access ended, once it did (it is being disconnected). */
type SocketAccess = { actor: Actor; credential: Credential; ended?: string };
type GatewayOptions = { auth?: AuthConfig; publicUrl: string; logger: Logger; limits?: AuthLimits; trustProxy?: boolean };
/** What re-checking needs of a socket, whichever events it is typed with. */
export type AccessSocket = { id: string; data: unknown; disconnect(): unknown; emit(event: "access:ended", payload: AccessEnded): unknown };

/**
 * A refused handshake, with a `data.code` the client reads (socket.io-client's `connect_error`):
 * it does not retry a refusal, so the dashboard tells "signed out" from a network failure by it.
 */
function refused(message: string, data: HandshakeRefusal): Error {
  return Object.assign(new Error(message), { data });
}

/**
 * Told when a socket's access shrank: `actor` is what it may do now, or null when it lost all
 * access (it is disconnected right after). The shell relay ends the sessions it may no longer hold.
 */
export type AccessListener = (socketId: string, actor: Actor | null, reason: string) => Promise<void>;

/**
 * Who a browser (session cookie, from the dashboard's own origin) or a CLI (`auth: { token }`)
 * connecting to `/ui` is.
 */
async function accessOf(services: Services, options: GatewayOptions, request: IncomingMessage, token: unknown): Promise<SocketAccess | null> {
  const ip = request.socket.remoteAddress;
  if (typeof token === "string" && token.length > 0) {
    // Bad tokens are rate limited per address, as on the HTTP API (server/auth/rate-limits.ts).
    const address = clientAddress(request, options.trustProxy ?? false);
    const refused = await options.limits?.tokensRefused(address);
    if (refused) {
      const message = `Too many bad API tokens from this address: try again in ${refused.retryAfterSeconds} seconds`;
      throw Object.assign(new AppError("UNAUTHORIZED", message), { data: { code: "TOO_MANY_REQUESTS", retryAfterSeconds: refused.retryAfterSeconds } });
    }
    try {
      const actor = await authenticateApiToken(services, token, "CLI", ip);
      return { actor, credential: { kind: "token", tokenHash: hashToken(token) } };
    } catch (error) {
      if (isAppError(error)) await options.limits?.tokenFailed(address);
      throw error;
    }
  }
  if (!options.auth || !request.headers.cookie) return null;
  if (!fromOwnOrigin(request, options.publicUrl)) throw new AppError("FORBIDDEN", "Cross-origin connection refused: open the dashboard from its own address");
  const session = await sessionOf(services, options.auth, request);
  const actor = session?.actor;
  if (!actor) return null;
  const { stamp, sessionId, expiresAt } = session;
  return { actor, credential: { kind: "session", userId: actor.id!, organizationId: actor.organizationId, stamp, sessionId, expiresAt } };
}

/**
 * Why a session is over although its cookie has not expired, or null while it is not: its
 * account's password changed since it signed in (session-stamp.ts), which only a GitHub sign-in
 * that took the account over does (server/auth/github-sign-in.ts: it removes the password), or
 * the account signed out everywhere (server/auth/sign-out-everywhere.ts).
 */
async function sessionEndedBy(services: Services, userId: string, stamp: string): Promise<string | null> {
  const [account] = await services.db
    .select({ passwordHash: users.passwordHash, sessionGeneration: users.sessionGeneration })
    .from(users)
    .where(eq(users.id, userId));
  if (!account) return ACCESS_ENDED.revoked;
  const ended = stampEndedBy(stamp, account);
  if (ended === null) return null;
  return {
    "password-changed": ACCESS_ENDED.passwordChanged,
    "github-takeover": ACCESS_ENDED.signedInWithGitHub,
    "signed-out-everywhere": ACCESS_ENDED.signedOutEverywhere,
  }[ended];
}

/** What a socket may do now, or why it may do nothing any more. */
async function currentActor(services: Services, access: SocketAccess, now: number): Promise<{ actor: Actor } | { ended: string }> {
  const { credential, actor } = access;
  if (credential.kind === "token") {
    const current = await currentTokenActor(services, credential.tokenHash, actor.origin, actor.ip);
    return current ? { actor: current } : { ended: ACCESS_ENDED.revoked };
  }
  // Its timer may not have fired yet (a busy process): a message after the expiry is not served.
  if (now >= credential.expiresAt) return { ended: ACCESS_ENDED.expired };
  const ended = await sessionEndedBy(services, credential.userId, credential.stamp);
  if (ended) return { ended };
  const current = await currentMemberActor(services, credential, actor.ip);
  return current ? { actor: current } : { ended: ACCESS_ENDED.revoked };
}

/** Calls `run` at `at` (ms since the epoch), however far off; returns what cancels it. */
function atTime(at: number, run: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const delay = at - Date.now();
    timer = delay <= 0 ? setTimeout(run, 0) : setTimeout(delay > MAX_TIMER_MS ? arm : run, Math.min(delay, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/** A room is joined only after its resource is found in the caller's organization. */
async function authorizeRoom(services: Services, actor: Actor, room: RoomName): Promise<void> {
  const [kind, id] = room.split(":") as ["environment" | "deployment" | "service", string];
  const ctx = { ...services, actor };
  if (kind === "environment") await getEnvironment(ctx, id);
  else if (kind === "deployment") await getDeployment(ctx, id);
  else await getService(ctx, id);
}

/**
 * The `/ui` namespace: live updates for the dashboard and the CLI. Status changes arrive from
 * Postgres on every web process and are emitted to that process's own sockets; log lines are
 * emitted by the process that stored them, through the socket.io Postgres adapter, to every
 * process.
 */
export function attachUiGateway(io: Server, services: Services, options: GatewayOptions) {
  const { logger } = options;
  const namespace = io.of(UI_NAMESPACE) as unknown as Namespace<UiClientEvents, UiServerEvents>;
  let onAccessChanged: AccessListener = async () => {};
  /** Per environment, the readings of statuses deployment changes started (deploymentChanged), one after the other. */
  const readInOrder = serialByKey();

  namespace.use(async (socket, next) => {
    try {
      const access = await accessOf(services, options, socket.request, (socket.handshake.auth as { token?: unknown }).token);
      if (!access) return next(refused("Sign in or pass an API token", { code: "UNAUTHORIZED" }));
      socket.data = access;
      next();
    } catch (error) {
      if (!isAppError(error)) logger.error({ err: error }, "authentication failed");
      const data = (error as { data?: HandshakeRefusal }).data ?? { code: isAppError(error) ? error.code : "INTERNAL" };
      next(refused(isAppError(error) ? error.message : "authentication failed", data));
    }
  });

  /**
   * A socket's access ended: its shells end with `reason` (the client and the audit are told),
   * then it is disconnected. Once: expiry, sign-out and re-checks may all come to it.
   */
  async function endAccess(socket: AccessSocket, reason: string): Promise<void> {
    const access = socket.data as SocketAccess;
    if (access.ended) return;
    access.ended = reason;
    // Before its shells' exits and the disconnection, on the same connection: the tab hears why first.
    socket.emit("access:ended", { reason } satisfies AccessEnded);
    try {
      await onAccessChanged(socket.id, null, reason);
    } finally {
      logger.info({ actor: access.actor.label, socketId: socket.id, reason }, "realtime access ended");
      // After the current message's refusal has been sent: the client learns why before it is cut off.
      setImmediate(() => socket.disconnect());
    }
  }

  /**
   * Re-reads what a socket may do now. A socket that lost all access has its shells ended and is
   * disconnected, and null is returned; one whose role dropped is told to its listener first.
   */
  async function reauthorize(socket: AccessSocket): Promise<Actor | null> {
    const access = socket.data as SocketAccess;
    if (access.ended) return null;
    const current = await currentActor(services, access, Date.now());
    const before = access.actor;
    if ("ended" in current) {
      await endAccess(socket, current.ended);
      return null;
    }
    const { actor } = current;
    access.actor = actor;
    if (hasRole(before, actor.role) && before.role !== actor.role) {
      await onAccessChanged(socket.id, actor, `role changed to ${actor.role}`);
      logger.info({ actor: actor.label, socketId: socket.id, role: actor.role }, "realtime access downgraded");
    }
    return actor;
  }

  /** Re-checks this process's sockets (of one organization, or all); failures are logged and retried at the next sweep. */
  async function recheck(organizationId?: string) {
    const concerned = [...namespace.sockets.values()].filter(
      (socket) => organizationId === undefined || (socket.data as SocketAccess).actor.organizationId === organizationId,
    );
    await Promise.all(
      concerned.map((socket) => reauthorize(socket).catch((error: unknown) => logger.error({ err: error, socketId: socket.id }, "access re-check failed"))),
    );
  }

  /** Ends this process's sockets of a browser session that signed out (other sessions of the user keep theirs). */
  async function signedOut(sessionId: string) {
    const concerned = [...namespace.sockets.values()].filter((socket) => {
      const { credential } = socket.data as SocketAccess;
      return credential.kind === "session" && credential.sessionId === sessionId;
    });
    await Promise.all(
      concerned.map((socket) =>
        endAccess(socket, ACCESS_ENDED.signedOut).catch((error: unknown) =>
          logger.error({ err: error, socketId: socket.id }, "ending a signed-out socket failed"),
        ),
      ),
    );
  }

  const sweep = setInterval(() => void recheck(), ACCESS_RECHECK_MS);
  sweep.unref();

  namespace.on("connection", (socket) => {
    const signedIn = socket.data as SocketAccess;
    const { credential } = signedIn;
    // Statuses of the organization the socket signed in to (its actor's, checked by the middleware above).
    void socket.join(organizationRoom(signedIn.actor.organizationId));
    if (credential.kind === "session") {
      // Authenticated once, at connection: the session's end is this cookie's expiry (7 days after it was issued).
      const cancel = atTime(credential.expiresAt, () => {
        endAccess(socket, ACCESS_ENDED.expired).catch((error: unknown) => logger.error({ err: error, socketId: socket.id }, "ending an expired socket failed"));
      });
      socket.on("disconnect", cancel);
    }
    socket.on("subscribe", async (payload, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const parsed = subscribeMessage.safeParse(payload);
      if (!parsed.success) return reply({ ok: false, error: "unknown room" });
      const room = parsed.data.room as RoomName;
      try {
        // Authorized against the current state, not the handshake's: access may have ended since.
        const actor = await reauthorize(socket);
        if (!actor) return reply({ ok: false, error: (socket.data as SocketAccess).ended ?? ACCESS_ENDED.revoked });
        await authorizeRoom(services, actor, room);
        await socket.join(room);
        reply({ ok: true });
      } catch (error) {
        if (!isAppError(error)) logger.error({ err: error, room }, "subscribe failed");
        reply({ ok: false, error: isAppError(error) ? error.message : "internal error" });
      }
    });
    socket.on("unsubscribe", (payload) => {
      const parsed = subscribeMessage.safeParse(payload);
      if (parsed.success) void socket.leave(parsed.data.room);
    });
  });

  return {
    reauthorize,
    /** The shell relay ends what a socket may no longer hold. */
    onAccessChanged(listener: AccessListener) {
      onAccessChanged = listener;
    },
    /**
     * From this process's Postgres listener (ACCESS_CHANNEL, access-channel.ts): re-checks its
     * sockets of the organization at once, or ends those of a session that signed out.
     */
    accessChanged(payload: string) {
      const notice = parseAccessNotice(payload);
      return notice.kind === "signed-out" ? signedOut(notice.sessionId) : recheck(notice.organizationId);
    },
    close() {
      clearInterval(sweep);
    },
    /**
     * This process's notifications (its listener's or the adapter's) came back after a gap: its
     * clients re-read. Spread over a few seconds: right after a database restart, every client
     * of every web process re-reading at once would be its first load.
     */
    resync() {
      for (const socket of namespace.sockets.values()) {
        setTimeout(() => socket.emit("realtime:resync"), Math.random() * RESYNC_SPREAD_MS).unref();
      }
    },
    /**
     * From this process's Postgres listener: every web process hears it, so emit locally only,
     * with the statuses it decides read now, and only when a socket here is to be told.
     */
    deploymentChanged(announced: DeploymentAnnounced) {
      const rooms = [`environment:${announced.environmentId}`, `deployment:${announced.deploymentId}`, organizationRoom(announced.organizationId)];
      if (!rooms.some((room) => namespace.adapter.rooms.get(room)?.size)) return;
      const { environmentId } = announced;
      // One environment's readings one after the other, each emitted when read: a page never gets
      // an older reading after a newer one.
      void readInOrder(environmentId, async () => {
        const statuses = await environmentLiveStatus(services.db, environmentId).catch((error: unknown) => {
          logger.error({ err: error, environmentId }, "could not read the statuses of a deployment change: pages re-read them");
          return { services: [] };
        });
        namespace.local.to(rooms).emit("deployment:changed", { ...announced, ...statuses });
      });
    },
    /** From this process's Postgres listener, like {@link deploymentChanged}. */
    serviceChanged(change: ServiceChanged) {
      namespace.local.to(organizationRoom(change.organizationId)).emit("service:changed", change);
    },
    /**
     * Stored lines, to every web process's subscribers. This process's own get them at once: the
     * adapter's broadcast first stores the batch in Postgres for the other processes (an attachment
     * row and a NOTIFY, two round trips) and only then emits locally (issue 17, item 7). The
     * broadcast leaves out the sockets served here, so each subscriber gets a batch once.
     */
    logLines(batch: LogLines) {
      const here = namespace.adapter.rooms.get(batch.stream);
      if (!here?.size) return void namespace.to(batch.stream).emit("log:lines", batch);
      namespace.local.to(batch.stream).emit("log:lines", batch);
      namespace
        .to(batch.stream)
        .except([...here])
        .emit("log:lines", batch);
    },
  };
}
