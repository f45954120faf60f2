import type { Namespace, Server, Socket } from "socket.io";
import {
  ENGINE_NAMESPACE,
  engineHandshake,
  engineToServer,
  protocolMismatch,
  SUPPORTED_PROTOCOL_VERSIONS,
  HEARTBEAT_TASKS_MAX,
  type EngineAck,
  type EngineMessageName,
  type EngineTask,
  type EnginePayload,
  type HandshakeRefusal,
} from "../../engine/protocol/messages";
import type { LogLine, LogStream } from "../../engine/protocol/events";
import type { Services } from "../context";
import { edgeStateOf } from "../domains/edge-state";
import { recordInventory } from "../engines/leftovers";
import type { EngineNotification } from "../deployments/engine-channel";
import {
  acknowledgeTask,
  answerHeartbeat,
  authenticateEngine,
  HEARTBEAT_STAMP_MS,
  REPORT_REFRESH_MS,
  type ReportMemory,
  logStreamKey,
  pullTask,
  recordEngineEvents,
  recordEngineHello,
  recordLogBatch,
} from "../engines/engine-session";
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from "../db/errors";
import { isAppError } from "../errors";
import type { Logger } from "../logger";
import { recordMetricBatch } from "../metrics/metrics";
import { engineDisconnected } from "../notifications/engine-events";
import { createHeartbeatStamps } from "../engines/heartbeat-stamps";
import { createLogBatchOrder } from "./log-batch-order";
import type { ShellRelay } from "./shell-relay";

/** What a handler knows of the engine's connection beyond its cluster. */
type Connection = {
  clusterId: string;
  storeInOrder: ReturnType<typeof createLogBatchOrder>;
  /** When this process last wrote the cluster's heartbeat stamp (the handshake writes it too). */
  stampedAt: number;
  /** What its heartbeats read of its services' stored reports (engine-session.ts). */
  reports: ReportMemory;
  /** What this process knows of the tasks waiting for the connection's engine. */
  tasks: TaskWatch;
};

/**
 * A heartbeat's answer carries the tasks a pull would find, in case their announcements were
 * lost (issue 17, item 4). Reading them at every heartbeat was most of an idle fleet's
 * statements, and this process hears every lease's announcement (its Postgres listener): it
 * reads them only when it heard one for the cluster that the engine has not acknowledged here
 * since, when its listener reconnected since the last read (what was said meanwhile is lost),
 * and at least every TASKS_READ_MS. Otherwise none waits, and the answer says so unread.
 */
type TaskWatch = {
  /** Leases announced for the cluster and not acknowledged on this connection since. */
  heard: Set<string>;
  /** When a heartbeat last read them; the listener's connection count then. */
  readAt: number;
  listenerGeneration: number;
};

/** The longest a connection's heartbeats go without reading the cluster's waiting tasks. */
export const TASKS_READ_MS = 60_000;

/** Whether a heartbeat must read the waiting tasks (see TaskWatch). */
function tasksToRead(watch: TaskWatch, now: number, listenerGeneration: number): boolean {
  return watch.heard.size > 0 || watch.listenerGeneration !== listenerGeneration || now - watch.readAt >= TASKS_READ_MS;
}

/**
 * After a read: what was heard before it and is not waiting any more is forgotten (a full answer
 * may have left some out: nothing is). What was heard during the read stays.
 */
function tasksRead(watch: TaskWatch, read: { at: number; listenerGeneration: number; heardBefore: string[]; tasks: EngineTask[] }): void {
  watch.readAt = read.at;
  watch.listenerGeneration = read.listenerGeneration;
  if (read.tasks.length >= HEARTBEAT_TASKS_MAX) return;
  const waiting = new Set(read.tasks.map((task) => task.deploymentId));
  for (const id of read.heardBefore) if (!waiting.has(id)) watch.heard.delete(id);
}
type Handlers = { [N in EngineMessageName]: (connection: Connection, payload: EnginePayload<N>) => Promise<Omit<Extract<EngineAck<N>, { ok: true }>, "ok">> };

const clusterRoom = (clusterId: string) => `cluster:${clusterId}`;

/** A handshake refusal: the engine reads `data` to tell a final refusal from one worth retrying. */
function refusal(message: string, data: HandshakeRefusal): Error {
  return Object.assign(new Error(message), { data });
}

/**
 * The `/engine` namespace: engines connect out to it with their cluster token, and every
 * message they send is validated against the protocol catalog, handled within their cluster,
 * and acknowledged with `{ ok }` or `{ ok: false, error }`.
 */
export function attachEngineGateway(
  io: Server,
  services: Services,
  logger: Logger,
  /** Told of every stored batch of log lines, to stream them to subscribers. */
  onLogBatch: (stream: LogStream, lines: LogLine[]) => void = () => {},
  /** Shell sessions' output and exits, to their clients on `/ui` (server/realtime/shell-relay.ts). */
  shells?: ShellRelay,
  /** How long heartbeat stamps are gathered into one write (server/engines/heartbeat-stamps.ts); tests shorten it. */
  stampFlushMs?: number,
) {
  const namespace: Namespace = io.of(ENGINE_NAMESPACE);
  const stamps = createHeartbeatStamps(services.db, logger, stampFlushMs);
  /** The engines connected here, by cluster. */
  const connections = new Map<string, Set<Connection>>();
  /** How many times this process's Postgres listener (re)connected: notifications between two connections are lost. */
  let listenerGeneration = 0;
  /** When this process last heard a deployment of each environment announced: its engines' services may have a report due. */
  const announcedAt = new Map<string, number>();
  // A service's memory is read again REPORT_REFRESH_MS after its last write at the latest: an
  // older announcement cannot concern it.
  const forgetAnnouncements = setInterval(() => {
    const before = services.now().getTime() - 2 * REPORT_REFRESH_MS;
    for (const [environmentId, at] of announcedAt) if (at < before) announcedAt.delete(environmentId);
  }, REPORT_REFRESH_MS);
  forgetAnnouncements.unref();

  namespace.use(async (socket, next) => {
    const hello = engineHandshake.safeParse(socket.handshake.auth);
    if (!hello.success) return next(refusal(`invalid handshake: ${hello.error.issues[0]?.message ?? "unknown"}`, { code: "INVALID" }));
    const mismatch = protocolMismatch(hello.data.protocolVersion);
    if (mismatch) return next(refusal(mismatch, { code: "PROTOCOL_VERSION", supported: SUPPORTED_PROTOCOL_VERSIONS }));
    try {
      const cluster = await authenticateEngine(services, hello.data.token);
      await recordEngineHello(services, cluster.id, hello.data);
      socket.data.clusterId = cluster.id;
      next();
    } catch (error) {
      if (isAppError(error) && error.code === "UNAUTHORIZED") return next(refusal(error.message, { code: "UNAUTHORIZED" }));
      // The database restarting, most likely: the engine tries again later.
      logger.warn({ err: error }, "could not authenticate an engine");
      next(refusal("the control plane cannot check engine tokens right now", { code: "UNAVAILABLE" }));
    }
  });

  const handlers: Handlers = {
    "task:pull": async ({ clusterId }) => ({ task: await pullTask(services, clusterId) }),
    "task:ack": async ({ clusterId, tasks }, { deploymentId, attempt }) => {
      await acknowledgeTask(services, clusterId, deploymentId, attempt);
      tasks.heard.delete(deploymentId);
      return {};
    },
    "deployment:event": async ({ clusterId }, { deploymentId, events }) => {
      await recordEngineEvents(services, clusterId, deploymentId, events);
      return {};
    },
    // Synchronous up to storeInOrder: a batch joins its stream's chain in the order the socket delivered it.
    "log:batch": ({ clusterId, storeInOrder }, { stream, lines, pipelined }) =>
      storeInOrder(logStreamKey(stream), pipelined === true, async () => {
        const stored = await recordLogBatch(services, clusterId, stream, lines);
        if (stored && stored.length > 0) onLogBatch(stream, stored);
        return {};
      }),
    "engine:heartbeat": async (connection, { activeDeployments, services: runtime }) => {
      // Half of a fleet's heartbeats would send an UPDATE that finds the stamp fresh and changes
      // nothing; those due are written with the other engines' (heartbeat-stamps.ts).
      const now = services.now().getTime();
      if (now - connection.stampedAt >= HEARTBEAT_STAMP_MS) {
        stamps.stamp(connection.clusterId, new Date(now));
        connection.stampedAt = now;
      }
      const readTasks = tasksToRead(connection.tasks, now, listenerGeneration);
      const before = { at: now, listenerGeneration, heardBefore: [...connection.tasks.heard] };
      const answer = await answerHeartbeat(services, connection.clusterId, activeDeployments, runtime, { memory: connection.reports, readTasks });
      if (readTasks) tasksRead(connection.tasks, { ...before, tasks: answer.tasks });
      return answer;
    },
    "engine:inventory": async ({ clusterId }, { services: usage }) => ({ remove: await recordInventory(services, clusterId, usage) }),
    "edge:pull": async ({ clusterId }) => ({ edge: await edgeStateOf(services, clusterId) }),
    "metrics:batch": async ({ clusterId }, { samples }) => {
      await recordMetricBatch(services, clusterId, samples);
      return {};
    },
    "shell:output": async ({ clusterId }, message) => {
      await shells?.output(clusterId, message);
      return {};
    },
    "shell:exit": async ({ clusterId }, message) => {
      await shells?.exit(clusterId, message);
      return {};
    },
  };

  namespace.on("connection", (socket: Socket) => {
    const clusterId: string = socket.data.clusterId;
    const log = logger.child({ clusterId, engine: socket.id });
    const connection: Connection = {
      clusterId,
      storeInOrder: createLogBatchOrder(),
      stampedAt: services.now().getTime(),
      reports: { services: new Map(), lastAnnounced: (environmentId) => announcedAt.get(environmentId) },
      // Never read: the first heartbeat reads them.
      tasks: { heard: new Set(), readAt: -Infinity, listenerGeneration },
    };
    let ofCluster = connections.get(clusterId);
    if (!ofCluster) connections.set(clusterId, (ofCluster = new Set()));
    ofCluster.add(connection);
    void socket.join(clusterRoom(clusterId));
    log.info("engine connected");
    shells?.engineConnected(clusterId);
    socket.on("disconnect", (reason) => {
      log.info({ reason }, "engine disconnected");
      ofCluster.delete(connection);
      if (ofCluster.size === 0 && connections.get(clusterId) === ofCluster) connections.delete(clusterId);
      shells?.engineDisconnected(clusterId).catch((error: unknown) => log.error({ err: error }, "could not end the engine's shell sessions"));
      // A web process stopping is not the engine's disconnection: the engine reconnects to another.
      // Reported only if it is still away after the grace period (engine-events.ts).
      if (reason !== "server shutting down")
        engineDisconnected(services, clusterId, reason, services.now()).catch((error: unknown) =>
          log.error({ err: error }, "could not schedule the check of the engine's disconnection"),
        );
    });

    for (const name of Object.keys(engineToServer) as EngineMessageName[]) {
      socket.on(name, async (payload: unknown, ack?: (answer: unknown) => void) => {
        const reply = typeof ack === "function" ? ack : () => {};
        const parsed = engineToServer[name][0].safeParse(payload);
        if (!parsed.success) return reply({ ok: false, error: { code: "INVALID", message: parsed.error.issues[0]?.message ?? "invalid payload" } });
        try {
          const handler = handlers[name] as (connection: Connection, payload: unknown) => Promise<object>;
          reply({ ok: true, ...(await handler(connection, parsed.data)) });
        } catch (error) {
          if (isAppError(error)) return reply({ ok: false, error: { code: error.code, message: error.message } });
          // The engine keeps what it sent and retries: an outage is not an internal error to log per message.
          if (isDatabaseUnavailable(error)) return reply({ ok: false, error: { code: "UNAVAILABLE", message: DATABASE_UNAVAILABLE_MESSAGE } });
          log.error({ err: error, message: name }, "engine message failed");
          reply({ ok: false, error: { code: "INTERNAL", message: "internal error" } });
        }
      });
    }
  });

  /**
   * A lease's announcement, with its task for the engines connected here (issue 17): the engine
   * takes it without a pull, a round trip less on the path of every dispatch. The task is read
   * as a pull reads it (still leased and unacknowledged, within the cluster); when it cannot be
   * (acknowledged already, or the database unreachable) the announcement goes without, and the
   * engine pulls as it always did.
   */
  async function announceTask(clusterId: string, deploymentId: string) {
    const room = namespace.local.to(clusterRoom(clusterId));
    // The common case in a fleet: none of the cluster's engines is connected to this process.
    if (!namespace.adapter.rooms.get(clusterRoom(clusterId))?.size) return;
    const task = await pullTask(services, clusterId, deploymentId).catch((error: unknown) => {
      logger.warn({ err: error, clusterId, deploymentId }, "could not read a leased task to send with its announcement");
      return null;
    });
    room.emit("task:available", task ? { task } : {});
  }

  return {
    /** From this process's Postgres listener, at each (re)connection. */
    listenerConnected() {
      listenerGeneration++;
    },
    /** From this process's Postgres listener: a deployment of the environment was requested or changed. */
    deploymentAnnounced(environmentId: string) {
      announcedAt.set(environmentId, services.now().getTime());
    },
    /** Stops its timers; the heartbeat stamps still waiting are written. */
    async close() {
      clearInterval(forgetAnnouncements);
      await stamps.close();
    },
    /**
     * Relays a notification from Postgres to the engines of its cluster connected here. Every web
     * process hears every notification, so each tells only its own sockets (through the adapter,
     * each engine heard it once per web process).
     */
    notify(notification: EngineNotification) {
      const room = namespace.local.to(clusterRoom(notification.clusterId));
      if (notification.type === "engine:revoked") namespace.local.in(clusterRoom(notification.clusterId)).disconnectSockets(true);
      else if (notification.type === "task:available") {
        for (const connection of connections.get(notification.clusterId) ?? []) connection.tasks.heard.add(notification.deploymentId);
        void announceTask(notification.clusterId, notification.deploymentId);
      } else if (notification.type === "edge:changed") room.emit("edge:changed", {});
      else room.emit("deployment:cancel", { deploymentId: notification.deploymentId });
    },
  };
}
