import type { Namespace, Server } from "socket.io";
import { ENGINE_NAMESPACE, serverToEngineAcks } from "../../engine/protocol/messages";
import { MAX_KEEPALIVE_SESSIONS, type ShellExit, type ShellOpenRequest, type ShellOutput } from "../../engine/protocol/shell";
import { hasRole, type Actor } from "../auth/actor";
import type { Services } from "../context";
import { AppError, isAppError } from "../errors";
import type { Logger } from "../logger";
import {
  abandonShellSession,
  closeShellSession,
  confirmShellSession,
  openSessionCluster,
  openSessionsOfCluster,
  prepareShellSession,
  SHELL_ROLE,
} from "../shells/shell-sessions";
import { firstAcceptedAnswer } from "./first-answer";
import type { AccessSocket } from "./ui-gateway";
import { shellCloseMessage, shellInputMessage, shellOpenMessage, shellResizeMessage, UI_NAMESPACE, type ShellExitMessage } from "./ui-protocol";

/** The room of a cluster's engines on `/engine` (as engine-gateway.ts names it). */
const clusterRoom = (clusterId: string) => `cluster:${clusterId}`;
/** The room of a session's client on `/ui`. */
const sessionRoom = (sessionId: string) => `shell:${sessionId}`;
/** Within it, the client that acknowledges output (`acknowledgesOutput`). */
const acknowledgingRoom = (sessionId: string) => `shell-acks:${sessionId}`;

const OPEN_TIMEOUT_MS = 15_000;
/** After a client closed or vanished, how long the engine has to report the exit before the session is closed without it. */
const EXIT_GRACE_MS = 5_000;
/**
 * How long after an engine connects the sessions of its cluster left open from before are closed
 * (engineConnected): by then every open request sent before it connected was answered or timed out.
 */
const ORPHAN_SWEEP_DELAY_MS = OPEN_TIMEOUT_MS + EXIT_GRACE_MS;
const MAX_SESSIONS_PER_SOCKET = 16;
const DEFAULT_KEEPALIVE_SECONDS = 20;

/**
 * Backpressure, engine to client. The engine asks for an acknowledgement of one output message
 * per 64 Ki characters and stops reading its process while four are unanswered
 * (engine/shell-sessions.ts); answered on arrival, as this relay did, they let a client on a slow
 * link (or a stalled tab) pile the output up in the web process that holds its socket. The relay
 * asks the client the same way, one message per ACK_EVERY characters, and keeps an engine's
 * message unanswered until the client has all but the last ACK_EVERY characters up to it: a
 * session then has no more in flight end to end than the engine's own bound (some 5 × 64 Ki), and
 * its process waits while the client does not keep up. The other messages (every keystroke's
 * echo) go unacknowledged as before.
 *
 * A client that stays connected but does not acknowledge is waited for without a time limit, as
 * a terminal's flow control does (ssh with a reader that stopped, Ctrl-S): its process pauses, it
 * is not killed, and the output is not let out either (letting it out after a while, as this relay
 * did every 30 s, piled it up again). A dashboard tab in the background acknowledges late
 * (xterm.js processes output on timers, which browsers throttle there) and must keep its shell.
 * What is held stays bounded as above; a client that left is seen by its socket's disconnection
 * (its sessions are closed, which lets the engine go), a web process that died by its keepalives
 * stopping, and one that is connected but idle by the engine's idle timeout (no input).
 */
const ACK_EVERY = 65_536;
/**
 * Between web processes (socket.io server-side events, through the Postgres adapter): an output
 * message asking for an acknowledgement, for the process that holds the session's client, and
 * that client's acknowledgement back. A room broadcast asking for acknowledgements cannot wait
 * without a time limit (the adapter forgets it at its timeout, and a late answer with it).
 */
const RELAY_OUTPUT = "shell:relay-output";
const RELAY_ACKNOWLEDGED = "shell:relay-acknowledged";
/** Sessions whose output flow a process tracks at most (a cache dropped at each session's end, like the clusters'). */
const MAX_FLOWS = 10_000;

/** A session's output on its way to the client, in characters (kept by the process holding its engine). */
type OutputFlow = {
  relayed: number;
  sinceAcknowledged: number;
  /** What the client acknowledged having: output up to this position. */
  acknowledged: number;
  /** Engine messages whose answer waits for the client to have the output up to `until`. */
  waiting: { until: number; resolve: () => void }[];
  /** Output messages the client was asked to acknowledge: seq -> the output's position at its end. */
  askedToAcknowledge: Map<number, number>;
};

function acknowledgedUpTo(flow: OutputFlow, position: number) {
  flow.acknowledged = Math.max(flow.acknowledged, position);
  flow.waiting = flow.waiting.filter((waiter) => {
    if (waiter.until > flow.acknowledged) return true;
    waiter.resolve();
    return false;
  });
}

/**
 * Emits to a room on this process directly when it has members here (no Postgres round trip on
 * every keystroke), else through the socket.io Postgres adapter to the process that has them.
 * Either path may reorder two messages: every message carries a seq and receivers reorder.
 */
function roomOf(namespace: Namespace, room: string) {
  return namespace.adapter.rooms.get(room)?.size ? namespace.local.to(room) : namespace.to(room);
}

type ClientSession = { clusterId: string; seq: number };

/** An engine's answer to `shell:open`, or undefined when it is not one this control plane can read. */
function openAnswerOf(answer: unknown) {
  const parsed = serverToEngineAcks["shell:open"].safeParse(answer);
  return parsed.success ? parsed.data : undefined;
}

/**
 * Shell sessions between clients (browsers and the CLI, on `/ui`) and engines (on `/engine`).
 * Nothing dials into a cluster: the engine already holds its socket. A client's messages go to
 * its cluster's room, an engine's to the session's room; with several web processes the
 * Postgres adapter carries them to whichever process holds the other end. Per-session state
 * lives in the process that holds the client's socket (the client is bound to it for the
 * session's life), and the `shell_sessions` row makes the close exactly-once.
 *
 * A process that dies without closing its sessions (SIGKILL, its machine gone) cannot tell the
 * engines; its keepalives stop instead, and each engine ends the sessions it stops hearing about.
 */
export function attachShellRelay(
  io: Server,
  services: Services,
  options: {
    logger: Logger;
    idleTimeoutSeconds?: number;
    /** How often the engines hear which sessions' clients this process still holds. */
    keepaliveSeconds?: number;
    /** What the client's socket may do now (ui-gateway.ts): a shell opens against the current state, not the handshake's. */
    reauthorize: (socket: AccessSocket) => Promise<Actor | null>;
  },
) {
  const { logger } = options;
  const ui = io.of(UI_NAMESPACE);
  const engines = io.of(ENGINE_NAMESPACE);
  /** Session -> cluster, read from Postgres once per session on the process that serves its engine. */
  const sessionClusters = new Map<string, string>();
  /**
   * Per client socket on this process: its open sessions (named in keepalives), and what ends
   * them all at once with the reason the client is shown and the audit records.
   */
  const clients = new Map<string, { sessions: Map<string, ClientSession>; endAll: (reason: string) => Promise<void> }>();
  const keepaliveSeconds = options.keepaliveSeconds ?? DEFAULT_KEEPALIVE_SECONDS;
  /** The pending closes of sessions engines left open (engineConnected), cleared when the process closes. */
  const sweeps = new Set<NodeJS.Timeout>();
  /** Per session whose engine is connected here, its output on the way to the client. */
  const flows = new Map<string, OutputFlow>();
  const endFlow = (sessionId: string) => {
    const flow = flows.get(sessionId);
    flows.delete(sessionId);
    if (flow) acknowledgedUpTo(flow, Infinity);
  };
  const flowOf = (sessionId: string): OutputFlow => {
    let flow = flows.get(sessionId);
    if (flow) return flow;
    if (flows.size >= MAX_FLOWS) for (const id of [...flows.keys()]) endFlow(id);
    flow = { relayed: 0, sinceAcknowledged: 0, acknowledged: 0, waiting: [], askedToAcknowledge: new Map() };
    flows.set(sessionId, flow);
    return flow;
  };

  /** The session's client has the output up to the message `seq` (it answered it, on this process or another). */
  const clientAcknowledged = (sessionId: string, seq: number) => {
    const flow = flows.get(sessionId);
    const position = flow?.askedToAcknowledge.get(seq);
    if (!flow || position === undefined) return;
    flow.askedToAcknowledge.delete(seq);
    acknowledgedUpTo(flow, position);
  };

  /**
   * Emits output to this process's clients of the session, those that acknowledge output asked
   * for an acknowledgement with no time limit (a disconnection drops the question with the
   * socket); `acknowledged` at once when none of them does (an older client: nothing to wait for).
   * False when the session has no client here.
   */
  const deliverHere = (message: ShellOutput, acknowledged: () => void): boolean => {
    const clients = ui.adapter.rooms.get(sessionRoom(message.sessionId));
    if (!clients?.size) return false;
    const acknowledging = ui.adapter.rooms.get(acknowledgingRoom(message.sessionId));
    let asked = false;
    for (const socketId of clients) {
      const socket = ui.sockets.get(socketId);
      if (socket && acknowledging?.has(socketId)) {
        socket.emit("shell:output", message, acknowledged);
        asked = true;
      } else socket?.emit("shell:output", message);
    }
    if (!asked) acknowledged();
    return true;
  };

  /**
   * Sends output to the session's client asking it for an acknowledgement, through the process
   * that holds it. Its answer moves the flow on (clientAcknowledged); the session's end does
   * otherwise, when its client left.
   */
  const sendAcknowledged = (flow: OutputFlow, message: ShellOutput, position: number) => {
    flow.askedToAcknowledge.set(message.seq, position);
    if (!deliverHere(message, () => clientAcknowledged(message.sessionId, message.seq))) ui.serverSideEmit(RELAY_OUTPUT, message);
  };
  ui.on(RELAY_OUTPUT, (message: ShellOutput) => {
    deliverHere(message, () => ui.serverSideEmit(RELAY_ACKNOWLEDGED, { sessionId: message.sessionId, seq: message.seq }));
  });
  ui.on(RELAY_ACKNOWLEDGED, (answer: { sessionId?: unknown; seq?: unknown } | undefined) => {
    if (typeof answer?.sessionId === "string" && typeof answer.seq === "number") clientAcknowledged(answer.sessionId, answer.seq);
  });

  /** One `shell:keepalive` per cluster, naming the sessions whose clients this process holds. */
  const keepalive = setInterval(() => {
    const byCluster = new Map<string, string[]>();
    for (const { sessions } of clients.values()) {
      for (const [sessionId, session] of sessions) {
        const ids = byCluster.get(session.clusterId) ?? [];
        byCluster.set(session.clusterId, ids);
        ids.push(sessionId);
      }
    }
    for (const [clusterId, ids] of byCluster) {
      for (let start = 0; start < ids.length; start += MAX_KEEPALIVE_SESSIONS) {
        roomOf(engines, clusterRoom(clusterId)).emit("shell:keepalive", { sessionIds: ids.slice(start, start + MAX_KEEPALIVE_SESSIONS) });
      }
    }
  }, keepaliveSeconds * 1000);
  keepalive.unref();

  const finish = async (sessionId: string, exit: Omit<ShellExitMessage, "sessionId">) => {
    sessionClusters.delete(sessionId);
    endFlow(sessionId);
    try {
      await closeShellSession(services, sessionId, { exitCode: exit.code, reason: exit.reason });
    } catch (error) {
      logger.error({ err: error, sessionId }, "could not close a shell session");
    }
  };

  /** Ends the cluster's open sessions (those opened before `openedBefore`, if given) for their clients and the audit. */
  const endClusterSessions = async (clusterId: string, reason: string, openedBefore?: Date) => {
    for (const sessionId of await openSessionsOfCluster(services, clusterId, openedBefore)) {
      const exit: ShellExitMessage = { sessionId, seq: 0, code: null, reason };
      roomOf(ui, sessionRoom(sessionId)).emit("shell:exit", exit);
      await finish(sessionId, exit);
    }
  };

  ui.on("connection", (socket) => {
    const sessions = new Map<string, ClientSession>();
    const toEngine = (session: ClientSession, name: string, payload: object) => roomOf(engines, clusterRoom(session.clusterId)).emit(name, payload);
    const leaveSession = (sessionId: string) => {
      void socket.leave(sessionRoom(sessionId));
      void socket.leave(acknowledgingRoom(sessionId));
    };
    /** Asks the engine to end the session; closes it without an exit code if the engine does not report one. */
    const release = (sessionId: string, why: string) => {
      const session = sessions.get(sessionId);
      if (!session) return;
      sessions.delete(sessionId);
      toEngine(session, "shell:close", { sessionId, seq: session.seq++ });
      setTimeout(() => void finish(sessionId, { seq: 0, code: null, reason: why }), EXIT_GRACE_MS).unref();
    };
    /**
     * Access ended or shrank (issue 13): the sessions end now, not when the engine reports, so the
     * client and the audit get the reason; the engine is told to stop the process.
     */
    const endAll = async (reason: string) => {
      const ending = [...sessions.entries()];
      sessions.clear();
      for (const [sessionId, session] of ending) {
        toEngine(session, "shell:close", { sessionId, seq: session.seq++ });
        leaveSession(sessionId);
        socket.emit("shell:exit", { sessionId, seq: 0, code: null, reason } satisfies ShellExitMessage);
        await finish(sessionId, { seq: 0, code: null, reason });
      }
    };
    clients.set(socket.id, { sessions, endAll });
    // A session whose process ended sends its exit to the session's room from whichever process
    // holds the engine: as it goes out to this client, the session stops being the client's (its
    // keepalives, its place among the MAX_SESSIONS_PER_SOCKET a connection may hold). The room is
    // left later: its last output may come after the exit (each path may reorder; seqs tell).
    socket.onAnyOutgoing((event: string, message?: { sessionId?: unknown }) => {
      if (event !== "shell:exit" || typeof message?.sessionId !== "string" || !sessions.delete(message.sessionId)) return;
      const sessionId = message.sessionId;
      setTimeout(() => leaveSession(sessionId), EXIT_GRACE_MS).unref();
    });

    socket.on("shell:open", async (payload: unknown, ack?: (answer: unknown) => void) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const parsed = shellOpenMessage.safeParse(payload);
      if (!parsed.success) return reply({ ok: false, code: "INVALID", error: parsed.error.issues[0]?.message ?? "invalid request" });
      const { sessionId, serviceId, cols, rows, argv, acknowledgesOutput } = parsed.data;
      let prepared = false;
      try {
        if (sessions.size >= MAX_SESSIONS_PER_SOCKET) throw new AppError("CONFLICT", `At most ${MAX_SESSIONS_PER_SOCKET} shell sessions per connection`);
        const actor = await options.reauthorize(socket);
        if (!actor) throw new AppError("UNAUTHORIZED", (socket.data as { ended?: string }).ended ?? "Access revoked");
        const ctx = { ...services, actor };
        const session = await prepareShellSession(ctx, { sessionId, serviceId, mode: argv ? "command" : "interactive" });
        prepared = true;
        await socket.join(acknowledgesOutput ? [sessionRoom(sessionId), acknowledgingRoom(sessionId)] : sessionRoom(sessionId));
        const request: ShellOpenRequest = {
          sessionId,
          serviceId: session.serviceId,
          argv,
          tty: !argv,
          cols,
          rows,
          idleTimeoutSeconds: options.idleTimeoutSeconds ?? 900,
          keepaliveSeconds,
        };
        // Through the adapter even when the engine is on this process: whichever process holds the
        // cluster's engine, its first acceptance opens the session.
        const opened = await firstAcceptedAnswer(engines, clusterRoom(session.clusterId), "shell:open", request, {
          timeoutMs: OPEN_TIMEOUT_MS,
          accept: (answer) => {
            const parsed = openAnswerOf(answer);
            return parsed?.ok ? parsed : undefined;
          },
        });
        if (!opened.accepted) {
          const refusal = opened.answers.map(openAnswerOf).find((answer) => answer && !answer.ok);
          throw new AppError(
            "UNAVAILABLE",
            refusal && !refusal.ok ? `The engine cannot open a shell: ${refusal.error.message}` : "The cluster's engine is not connected",
          );
        }
        sessions.set(sessionId, { clusterId: session.clusterId, seq: 0 });
        await confirmShellSession(ctx, sessionId);
        logger.info({ sessionId, serviceId, actor: actor.label }, "shell session opened");
        reply({ ok: true, sessionId });
      } catch (error) {
        leaveSession(sessionId);
        if (prepared) await abandonShellSession(services, sessionId).catch(() => undefined);
        if (!isAppError(error)) logger.error({ err: error, sessionId }, "shell open failed");
        return reply({ ok: false, code: isAppError(error) ? error.code : "INTERNAL", error: isAppError(error) ? error.message : "internal error" });
      }
      // Access that shrank while the engine was starting this session ended the others but not
      // this one, which was not held yet: checked again now that it can be ended like them.
      try {
        const current = await options.reauthorize(socket);
        if (current && !hasRole(current, SHELL_ROLE)) await endAll(`role changed to ${current.role}: shells need the ${SHELL_ROLE} role`);
      } catch (error) {
        logger.error({ err: error, sessionId }, "access re-check after a shell opened failed");
      }
    });

    socket.on("shell:input", (payload: unknown) => {
      const parsed = shellInputMessage.safeParse(payload);
      const session = parsed.success ? sessions.get(parsed.data.sessionId) : undefined;
      if (!parsed.success || !session) return;
      toEngine(session, "shell:input", { ...parsed.data, seq: session.seq++ });
    });
    socket.on("shell:resize", (payload: unknown) => {
      const parsed = shellResizeMessage.safeParse(payload);
      const session = parsed.success ? sessions.get(parsed.data.sessionId) : undefined;
      if (!parsed.success || !session) return;
      toEngine(session, "shell:resize", { ...parsed.data, seq: session.seq++ });
    });
    socket.on("shell:close", (payload: unknown) => {
      const parsed = shellCloseMessage.safeParse(payload);
      if (parsed.success) release(parsed.data.sessionId, "closed by the client");
    });
    socket.on("disconnect", () => {
      clients.delete(socket.id);
      for (const sessionId of [...sessions.keys()]) release(sessionId, "the client disconnected");
    });
  });

  /** Is this (open) session one of the cluster's? Engines speak only for their own sessions. */
  const belongs = async (clusterId: string, sessionId: string): Promise<boolean> => {
    let owner = sessionClusters.get(sessionId);
    if (!owner) {
      owner = (await openSessionCluster(services, sessionId)) ?? undefined;
      if (!owner) return false;
      // Bounded: a cache of authoritative rows, dropped at each session's end.
      if (sessionClusters.size > 10_000) sessionClusters.clear();
      sessionClusters.set(sessionId, owner);
    }
    return owner === clusterId;
  };

  return {
    close() {
      clearInterval(keepalive);
      for (const sweep of sweeps) clearTimeout(sweep);
    },
    /** A client socket's access ended (actor null) or shrank: its sessions end when it may no longer hold them. */
    async accessChanged(socketId: string, actor: Actor | null, reason: string) {
      if (actor && hasRole(actor, SHELL_ROLE)) return;
      await clients.get(socketId)?.endAll(actor ? `${reason}: shells need the ${SHELL_ROLE} role` : reason);
    },
    /**
     * Terminal output from an engine, to the session's client (ordered by seq). Resolves, and the
     * engine's acknowledgement is answered, once the client has all but the last ACK_EVERY
     * characters of the output up to this message.
     */
    async output(clusterId: string, message: ShellOutput) {
      if (!(await belongs(clusterId, message.sessionId))) return;
      const flow = flowOf(message.sessionId);
      flow.relayed += message.data.length;
      flow.sinceAcknowledged += message.data.length;
      const position = flow.relayed;
      if (flow.sinceAcknowledged < ACK_EVERY) roomOf(ui, sessionRoom(message.sessionId)).emit("shell:output", message);
      else {
        flow.sinceAcknowledged = 0;
        sendAcknowledged(flow, message, position);
      }
      if (flow.acknowledged < position - ACK_EVERY) await new Promise<void>((resolve) => flow.waiting.push({ until: position - ACK_EVERY, resolve }));
    },
    /** The session's process ended: tell the client, close and audit the session. */
    async exit(clusterId: string, message: ShellExit) {
      if (!(await belongs(clusterId, message.sessionId))) return;
      roomOf(ui, sessionRoom(message.sessionId)).emit("shell:exit", message);
      await finish(message.sessionId, { seq: message.seq, code: message.code, reason: message.reason });
    },
    /** The engine's connection dropped: it ends its sessions itself; close them here for their clients. */
    engineDisconnected(clusterId: string): Promise<void> {
      return endClusterSessions(clusterId, "the engine disconnected");
    },
    /**
     * An engine connected. It holds no sessions: it ends them all when it loses its connection or
     * stops, and cannot tell anyone while away. When the web process that held its previous
     * connection died with it (SIGKILL, its machine gone), no one closed them: sessions of the
     * cluster still open from before this connection are closed a while later, their clients
     * told (on any web process) and the audit written.
     */
    engineConnected(clusterId: string): void {
      const connectedAt = services.now();
      const sweep = setTimeout(() => {
        sweeps.delete(sweep);
        endClusterSessions(clusterId, "the engine lost its connection to the control plane or restarted", connectedAt).catch((error: unknown) =>
          logger.error({ err: error, clusterId }, "could not close the shell sessions an engine left open"),
        );
      }, ORPHAN_SWEEP_DELAY_MS);
      sweep.unref();
      sweeps.add(sweep);
    },
  };
}

export type ShellRelay = ReturnType<typeof attachShellRelay>;
