import type { IncomingMessage } from "node:http";
import type { AuthConfig } from "@auth/core";
import type { Server } from "socket.io";
import type { Actor } from "../auth/actor";
import { actorFromSession } from "../auth/sessions";
import type { Services } from "../context";
import { getDeployment } from "../deployments/queries";
import { getEnvironment } from "../environments/environments";
import { isAppError } from "../errors";
import type { Logger } from "../logger";
import { getService } from "../services/services";
import { authenticateApiToken } from "../tokens/api-tokens";
import { subscribeMessage, UI_NAMESPACE, type DeploymentChanged, type LogLines, type RoomName, type UiClientEvents, type UiServerEvents } from "./ui-protocol";

/** Who a browser (session cookie) or a CLI (`auth: { token }`) connecting to `/ui` is. */
async function actorOf(services: Services, auth: AuthConfig | undefined, request: IncomingMessage, token: unknown): Promise<Actor | null> {
  if (typeof token === "string" && token.length > 0) return authenticateApiToken(services, token, "CLI", request.socket.remoteAddress);
  return auth ? actorFromSession(services, auth, request) : null;
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
export function attachUiGateway(io: Server, services: Services, options: { auth?: AuthConfig; logger: Logger }) {
  const namespace = io.of(UI_NAMESPACE) as unknown as import("socket.io").Namespace<UiClientEvents, UiServerEvents>;

  namespace.use(async (socket, next) => {
    try {
      const actor = await actorOf(services, options.auth, socket.request, (socket.handshake.auth as { token?: unknown }).token);
      if (!actor) return next(new Error("Sign in or pass an API token"));
      socket.data.actor = actor;
      next();
    } catch (error) {
      next(new Error(isAppError(error) ? error.message : "authentication failed"));
    }
  });

  namespace.on("connection", (socket) => {
    const actor: Actor = socket.data.actor;
    socket.on("subscribe", async (payload, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const parsed = subscribeMessage.safeParse(payload);
      if (!parsed.success) return reply({ ok: false, error: "unknown room" });
      const room = parsed.data.room as RoomName;
      try {
        await authorizeRoom(services, actor, room);
        await socket.join(room);
        reply({ ok: true });
      } catch (error) {
        if (!isAppError(error)) options.logger.error({ err: error, room }, "subscribe failed");
        reply({ ok: false, error: isAppError(error) ? error.message : "internal error" });
      }
    });
    socket.on("unsubscribe", (payload) => {
      const parsed = subscribeMessage.safeParse(payload);
      if (parsed.success) void socket.leave(parsed.data.room);
    });
  });

  return {
    /** From this process's Postgres listener: every web process hears it, so emit locally only. */
    deploymentChanged(change: DeploymentChanged) {
      namespace.local.to([`environment:${change.environmentId}`, `deployment:${change.deploymentId}`]).emit("deployment:changed", change);
    },
    /** Stored lines, to every web process's subscribers through the adapter. */
    logLines(batch: LogLines) {
      namespace.to(batch.stream).emit("log:lines", batch);
    },
  };
}
