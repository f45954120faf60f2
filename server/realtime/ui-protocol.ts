import { z } from "zod";
import type { DeploymentStatus } from "../../engine/protocol/events";
import type { EnvironmentStatus, ServiceStatus } from "../overview/live-status";

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

/**
 * The room every socket is put in at connection, for the organization it signed in to: what
 * each page shows a status of (the overview, a project, an environment, a service) hears here
 * that it may have changed. Not subscribable: a socket only ever hears its own organization.
 */
export const organizationRoom = (organizationId: string) => `organization:${organizationId}` as const;

/** What every web process hears (a NOTIFY) whenever a deployment is requested or records events. */
export type DeploymentAnnounced = {
  deploymentId: string;
  environmentId: string;
  organizationId: string;
  status: DeploymentStatus;
  /** The id of the newest event: a client with an older one fetches the events after it. */
  lastEventId: number;
};

/**
 * Sent to `environment:<id>`, `deployment:<id>` and the organization's room: an announcement,
 * with the statuses read by the web process that sends it (server/realtime/ui-gateway.ts).
 */
export type DeploymentChanged = DeploymentAnnounced & {
  /** The environment's status, as every page shows it (server/overview/live-status.ts); absent when it could not be read. */
  environmentStatus?: EnvironmentStatus;
  /** Its services' statuses; empty when too many to carry, or unread: pages re-read them. */
  services: { serviceId: string; status: ServiceStatus }[];
};

/**
 * Sent to the organization's room when an engine's report changes what a service shows (its
 * status, as server/overview/live-status.ts derives it, its running commit or its restarts).
 */
export type ServiceChanged = { serviceId: string; environmentId: string; organizationId: string; status: ServiceStatus };

export type StreamedLogLine = {
  seq: number;
  at: string;
  fd: "stdout" | "stderr" | "system";
  text: string;
  /** A runtime line's `<release id>:<byte offset>` (a live filter by release reads it). */
  source?: string;
  deploymentId: string | null;
  serviceId: string | null;
};

/** Sent to `deployment:<id>` (build output) or `service:<id>` (runtime output) as lines arrive. */
export type LogLines = { stream: RoomName; lines: StreamedLogLine[] };

/**
 * Why a `/ui` socket's access ended, as its shells' `shell:exit` (and their audit) say before it
 * is disconnected. A client reconnects after a server-side disconnect: with a cookie still valid
 * (one the browser renewed since) it is back at once, otherwise its connection is refused.
 */
export const ACCESS_ENDED = {
  signedOut: "signed out in this browser",
  signedInWithGitHub: "signed out: the account was signed in with GitHub, which ends the sessions signed in with its password",
  passwordChanged: "signed out: the account's password changed",
  signedOutEverywhere: "signed out: the account signed out everywhere",
  expired: "signed out: the session expired, sign in again",
  revoked: "access revoked",
} as const;

/**
 * Sent to a `/ui` socket whose access ended, before anything else the end sends it (its shells'
 * `shell:exit`) and before it is disconnected: every view of the tab (live logs, shells) can say
 * why, in whichever order it hears the rest.
 */
export type AccessEnded = { reason: string };
/**
 * The `data.code` of a refused `/ui` handshake: UNAUTHORIZED when the browser is not signed in
 * (any more), otherwise the refusal's AppError code (INTERNAL when it was not one).
 */
export type HandshakeRefusal = { code: string; retryAfterSeconds?: number };

/**
 * Shell sessions (server/realtime/shell-relay.ts). A client opens one in a service's live
 * release, choosing the session id itself (a UUID) so it listens before the first output comes;
 * `argv` runs one command without a terminal (`slipway shell … -- cmd`). Output and the exit
 * carry `seq`: put output back in order, and end after the output before the exit's `seq`.
 *
 * A client that says `acknowledgesOutput` answers every `shell:output` sent with an
 * acknowledgement once it has shown that output (one message per 64 Ki characters asks for one;
 * answer it after the messages before it): the session's process then waits while the client
 * falls behind, for as long as it stays connected, instead of its output piling up in the web
 * process (a late answer is still heard). Clients that do not say it (older ones) get the output
 * as before, without being asked.
 */
export const shellOpenMessage = z.object({
  sessionId: z.string().uuid(),
  serviceId: z.string().uuid(),
  cols: z.number().int().min(2).max(1000).default(80),
  rows: z.number().int().min(1).max(500).default(24),
  argv: z.array(z.string().max(4000)).min(1).max(200).optional(),
  acknowledgesOutput: z.boolean().optional(),
});
export const shellInputMessage = z.object({ sessionId: z.string().uuid(), data: z.string().max(65_536), end: z.boolean().optional() });
export const shellResizeMessage = z.object({ sessionId: z.string().uuid(), cols: z.number().int().min(2).max(1000), rows: z.number().int().min(1).max(500) });
export const shellCloseMessage = z.object({ sessionId: z.string().uuid() });
export type ShellOpenMessage = z.input<typeof shellOpenMessage>;
export type ShellOutputMessage = { sessionId: string; seq: number; data: string };
export type ShellExitMessage = { sessionId: string; seq: number; code: number | null; reason?: string };
export type ShellOpenAnswer = { ok: true; sessionId: string } | { ok: false; error: string; code?: string };

export type UiServerEvents = {
  "deployment:changed": (payload: DeploymentChanged) => void;
  "service:changed": (payload: ServiceChanged) => void;
  "log:lines": (payload: LogLines) => void;
  /** `acknowledge` is given only to a client that said `acknowledgesOutput`, and only now and then. */
  "shell:output": (payload: ShellOutputMessage, acknowledge?: () => void) => void;
  "shell:exit": (payload: ShellExitMessage) => void;
  "access:ended": (payload: AccessEnded) => void;
  /**
   * This web process may have missed messages for its clients: its connection to PostgreSQL's
   * notifications dropped and came back (a database restart), and what was notified meanwhile is
   * not replayed. The socket stayed connected: re-read what the view shows, as after a reconnect.
   */
  "realtime:resync": () => void;
};
export type UiClientEvents = {
  subscribe: (payload: { room: RoomName }, ack: (answer: { ok: true } | { ok: false; error: string }) => void) => void;
  unsubscribe: (payload: { room: RoomName }) => void;
  "shell:open": (payload: ShellOpenMessage, ack: (answer: ShellOpenAnswer) => void) => void;
  "shell:input": (payload: z.input<typeof shellInputMessage>) => void;
  "shell:resize": (payload: z.input<typeof shellResizeMessage>) => void;
  "shell:close": (payload: z.input<typeof shellCloseMessage>) => void;
};
