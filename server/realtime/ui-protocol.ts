import { z } from "zod";
import type { DeploymentStatus } from "../../engine/protocol/events";

/**
 * The `/ui` namespace: browsers (and the CLI) subscribe to rooms and are told what changed.
 * Notifications carry enough to update a view, but the authoritative state is in the API:
 * after a reconnect a client re-reads what it shows ("after seq N"), so a lost message costs
 * nothing.
 */
export const UI_NAMESPACE = "/ui";

/** `environment:<id>`, `deployment:<id>` or `service:<id>` (runtime logs of a service). */
export const roomName = z.string().regex(/^(environment|deployment|service):[0-9a-f-]{36}$/, "unknown room");
export type RoomName = `${"environment" | "deployment" | "service"}:${string}`;

export const subscribeMessage = z.object({ room: roomName });

/** Sent to `environment:<id>` and `deployment:<id>` whenever a deployment records events. */
export type DeploymentChanged = {
  deploymentId: string;
  environmentId: string;
  status: DeploymentStatus;
  /** The id of the newest event: a client with an older one fetches the events after it. */
  lastEventId: number;
};

export type StreamedLogLine = { seq: number; at: string; fd: "stdout" | "stderr" | "system"; text: string; deploymentId: string | null; serviceId: string | null };

/** Sent to `deployment:<id>` (build output) or `service:<id>` (runtime output) as lines arrive. */
export type LogLines = { stream: RoomName; lines: StreamedLogLine[] };

export type UiServerEvents = {
  "deployment:changed": (payload: DeploymentChanged) => void;
  "log:lines": (payload: LogLines) => void;
};
export type UiClientEvents = {
  subscribe: (payload: { room: RoomName }, ack: (answer: { ok: true } | { ok: false; error: string }) => void) => void;
  unsubscribe: (payload: { room: RoomName }) => void;
};
