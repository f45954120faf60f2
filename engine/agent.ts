import { randomUUID } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import type { Logger } from "pino";
import { createControlPlaneClient, type Answer } from "./control-plane-client";
import type { Engine, EngineReporter } from "./core";
import { Outbox, type Delivery, type OutboxMessage } from "./outbox";
import { createBackoff } from "./protocol/backoff";
import { EVENT_MESSAGE_MAX, LOG_LINE_MAX, shortenText } from "./protocol/events";
import {
  ENGINE_NAMESPACE,
  handshakeRefusal,
  HEARTBEAT_TASKS_MAX,
  PROTOCOL_VERSION,
  type EngineHandshake,
  type EngineMessageName,
  type EngineTask,
} from "./protocol/messages";
import { createSequence } from "./sequence";
import { createShellSessions, serveShellMessages } from "./shell-sessions";

export type AgentOptions = {
  url: string;
  token: string;
  engineVersion: string;
  capabilities: EngineHandshake["capabilities"];
  logger: Logger;
  heartbeatMs?: number;
  /** How often the engine samples its releases and ships `metrics:batch` (0: never); 5 s by default. */
  metricsIntervalMs?: number;
  /** How often the engine reports the files it keeps (`engine:inventory`); 5 minutes by default. */
  inventoryIntervalMs?: number;
  /** The protocol version announced at the handshake; PROTOCOL_VERSION but in tests that play another release's engine. */
  protocolVersion?: number;
  /** Where unacknowledged events and log lines are kept across engine restarts (engineFiles(home).outboxDir). */
  outboxDir: string;
  /** The outbox's bound on disk; 64 MiB by default. */
  outboxMaxBytes?: number;
  /** Called when the control plane refuses the token: the agent has stopped. */
  onRefused?: (reason: string) => void;
};

/**
 * The engine's link to the control plane. It connects out (nothing dials into a cluster),
 * takes the tasks sent with their announcements and with the heartbeats' answers (pulling when
 * they come without, and at each connection), ships events and log lines through the outbox,
 * and reconnects with backoff.
 */
export function createAgent(options: AgentOptions, makeEngine: (reporter: EngineReporter) => Engine) {
  const { logger } = options;
  const nextSeq = createSequence();
  // One per process: the control plane tells a restarted engine (a new boot id) from a reconnecting one.
  const bootId = randomUUID();
  let socket: Socket | null = null;
  let stopped = false;
  let pulling: Promise<void> | null = null;
  /** A pull was asked for while one was under way: that pull may have missed its task (its query ran before the lease committed). */
  let pullAgain = false;
  /** Tasks handed over without a pull (with their announcement, with a heartbeat's answer), waiting for the round under way. */
  const offered: EngineTask[] = [];
  /**
   * The attempt of each task taken, kept until a heartbeat sent after its acknowledgement was
   * stored is answered: an answer read before then (a heartbeat's, an announcement crossing a
   * pull) may hand the same task over again, and it is not taken twice. A task whose
   * acknowledgement failed is forgotten at once: handed over again, it is taken again.
   */
  const taken = new Map<string, number>();
  /** Tasks acknowledged since the last heartbeat was sent, forgotten when the next one is answered. */
  let acknowledgedSinceHeartbeat: EngineTask[] = [];
  function forget({ deploymentId, attempt }: EngineTask) {
    if (taken.get(deploymentId) === attempt) taken.delete(deploymentId);
  }
  const client = createControlPlaneClient({ socket: () => socket });

  /** A request's acknowledgement, or null when it was refused or unanswered (logged, unless merely unreachable). */
  async function request<N extends EngineMessageName>(...args: Parameters<typeof client.request<N>>) {
    const answer = await client.request(...args);
    if (answer.status === "ok") return answer.ack;
    if (answer.status === "refused") logger.warn({ message: args[0], code: answer.code, reason: answer.message }, "the control plane refused a request");
    return null;
  }

  let refusals = 0;
  const outbox = Outbox.open({
    dir: options.outboxDir,
    maxBytes: options.outboxMaxBytes,
    send: (message) => client.request(message.name, message.payload).then((answer) => deliveryOf(message, answer)),
    onJournalError: (error) =>
      logger.error({ err: error, dir: options.outboxDir }, "cannot write the outbox's journal; unacknowledged events and lines are kept in memory only"),
  });
  if (outbox.replayed.events + outbox.replayed.lines > 0)
    logger.info(outbox.replayed, "sending first the events and log lines a previous engine had not got stored");
  if (outbox.replayed.skipped > 0)
    logger.warn({ skipped: outbox.replayed.skipped }, "skipped unreadable records of the outbox's journal (the previous engine was killed while writing)");

  /**
   * Whether a batch was stored, or may be forgotten, or must be sent again. Only two refusals are
   * final: the deployment or service it belongs to no longer exists (expected after a delete),
   * and a batch the protocol cannot carry, which no retry would change (logged as an error: it
   * is a bug). Anything else (the control plane's database restarting, an internal error) keeps
   * the batch for the next try.
   */
  function deliveryOf(message: OutboxMessage, answer: Answer<OutboxMessage["name"]>): Delivery {
    if (answer.status === "ok") {
      refusals = 0;
      return "delivered";
    }
    if (answer.status === "unreachable") return "retry";
    if (answer.code === "NOT_FOUND") {
      logger.debug({ message: message.name, reason: answer.message }, "the control plane no longer knows where this batch belongs; not sending it again");
      return "discarded";
    }
    if (answer.code === "INVALID" || answer.code === "INVALID_ACK") {
      logger.error({ message: message.name, reason: answer.message }, "the control plane cannot take this batch as it is; it is dropped");
      return "discarded";
    }
    // Once per streak: a database outage would otherwise log every retry.
    if (refusals++ === 0)
      logger.warn({ message: message.name, code: answer.code, reason: answer.message }, "the control plane could not store a batch; keeping it and retrying");
    return "retry";
  }

  const reporter: EngineReporter = {
    nextSeq,
    event(deploymentId, event) {
      const message = event.message === undefined ? {} : { message: shortenText(event.message, EVENT_MESSAGE_MAX) };
      outbox.pushEvent(deploymentId, { ...event, ...message, seq: event.seq ?? nextSeq(), at: event.at ?? new Date().toISOString() });
      outbox.nudge();
    },
    log(stream, fd, text, at, origin) {
      const line = {
        seq: nextSeq(),
        at: at ?? new Date().toISOString(),
        fd,
        text: shortenText(text, LOG_LINE_MAX),
        ...(origin ? { source: origin.source } : {}),
      };
      outbox.pushLine(stream, line, origin?.stored);
      outbox.nudge();
    },
  };
  const engine = makeEngine(reporter);
  // Output goes out as it comes, mostly unacknowledged: ordering is by seq, and a session whose
  // engine lost the control plane is ended (below) rather than buffered. Now and then a message
  // goes acknowledged, so that a session's output in flight stays bounded (shell-sessions.ts).
  const shells = createShellSessions({
    exec: engine.exec ? engine.exec.bind(engine) : undefined,
    send: (name, payload) => void client.notify(name, payload),
    sendAcknowledged: async (payload) => void (await client.request("shell:output", payload)),
    logger,
  });
  let collecting = false;
  async function shipMetrics() {
    if (!engine.metrics || collecting || !socket?.connected) return;
    collecting = true;
    try {
      const samples = await engine.metrics();
      if (samples.length > 0) await request("metrics:batch", { samples });
    } catch (error) {
      logger.warn({ err: error }, "could not sample metrics");
    } finally {
      collecting = false;
    }
  }

  let inventorying = false;
  /** Reports the files kept per service; removes those the control plane names as leftovers, and says so at once. */
  async function reportInventory() {
    if (!engine.inventory || inventorying || !socket?.connected) return;
    inventorying = true;
    try {
      for (let round = 0; round < 2; round++) {
        const answer = await request("engine:inventory", { services: await engine.inventory() });
        const remove = answer?.remove ?? [];
        if (remove.length === 0 || !engine.purge) return;
        logger.info({ services: remove }, "removing the files of deleted services");
        await engine.purge(remove);
      }
    } catch (error) {
      logger.warn({ err: error }, "could not report this engine's files");
    } finally {
      inventorying = false;
    }
  }

  let edgeRound: Promise<void> | null = null;
  let edgeAgain = false;
  /**
   * Pulls the cluster's custom domains and hands them to the router. A change announced while a
   * pull runs is pulled again after it, so the router ends with the latest state.
   */
  function syncEdge(): Promise<void> {
    if (!engine.applyEdge) return Promise.resolve();
    if (edgeRound) {
      edgeAgain = true;
      return edgeRound;
    }
    edgeRound = (async () => {
      do {
        edgeAgain = false;
        const answer = await request("edge:pull", {});
        if (!answer) return;
        try {
          await engine.applyEdge!(answer.edge);
        } catch (error) {
          logger.error({ err: error }, "the router did not take the custom domains");
        }
      } while (edgeAgain);
    })().finally(() => (edgeRound = null));
    return edgeRound;
  }

  async function pullAll() {
    for (;;) {
      // The acknowledgement's schema includes the task's: one this engine cannot read is refused (INVALID_ACK) and logged.
      const task = (await request("task:pull", {}))?.task;
      if (!task) return;
      await take(task);
    }
  }

  async function take(task: EngineTask) {
    const { deploymentId, attempt } = task;
    if (taken.get(deploymentId) === attempt) return;
    taken.set(deploymentId, attempt);
    // Sent before the task's first event (one socket keeps the order), and not waited for to
    // start: the engine keys its work by deployment id, so a task pulled again is harmless, and
    // a task not acknowledged when this engine dies goes to the next one, as before.
    const acknowledged = request("task:ack", { deploymentId, attempt });
    logger.info({ deploymentId, attempt, action: task.snapshot.action }, "task received");
    void engine.execute(task).catch((error: unknown) => logger.error({ err: error, deploymentId }, "task failed unexpectedly"));
    // The next pull must not find this task again unacknowledged.
    if (await acknowledged) acknowledgedSinceHeartbeat.push(task);
    else forget(task);
  }

  /**
   * Takes the tasks handed over without a pull, then, when `thenPull`, pulls until nothing is left
   * (issue 17). What arrives during a round joins it: its tasks are taken after the current one,
   * and a pull asked for then runs once the pull under way ends (that one's query may have run
   * before the task's lease committed): dropping it left the task waiting for the next heartbeat.
   */
  function pull(tasks: EngineTask[] = [], thenPull = true): Promise<void> {
    offered.push(...tasks);
    if (thenPull) pullAgain = true;
    if (pulling) return pulling;
    pulling = (async () => {
      while (offered.length > 0 || pullAgain) {
        const task = offered.shift();
        if (task) {
          await take(task);
          continue;
        }
        pullAgain = false;
        await pullAll();
      }
    })().finally(() => (pulling = null));
    return pulling;
  }

  async function heartbeat() {
    const stored = acknowledgedSinceHeartbeat;
    acknowledgedSinceHeartbeat = [];
    const answer = await request("engine:heartbeat", { activeDeployments: engine.activeDeployments(), services: engine.services() });
    for (const id of answer?.cancel ?? []) engine.cancel(id);
    void outbox.flush();
    // The answer carries what a pull would find (issue 17, item 4): no pull after it, unless it is
    // full (more may wait) or carries none (a control plane that predates it, or no answer).
    const tasks = answer?.tasks;
    void pull(tasks ?? [], tasks === undefined || tasks.length >= HEARTBEAT_TASKS_MAX);
    // This answer was read after those acknowledgements were stored: no later one hands them over.
    if (answer) stored.forEach(forget);
    else acknowledgedSinceHeartbeat.push(...stored);
  }

  const handshakeRetry = createBackoff({ baseMs: 1_000, maxMs: 60_000 });
  function connect() {
    const auth: EngineHandshake = {
      token: options.token,
      protocolVersion: options.protocolVersion ?? PROTOCOL_VERSION,
      engineVersion: options.engineVersion,
      bootId,
      capabilities: options.capabilities,
    };
    socket = io(new URL(ENGINE_NAMESPACE, options.url).toString(), {
      auth,
      transports: ["websocket"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 10_000,
      randomizationFactor: 0.5,
    });
    socket.on("connect", () => {
      handshakeRetry.reset();
      logger.info({ url: options.url }, "connected to the control plane");
      void outbox.flush();
      void heartbeat();
      // And a pull, as at every connection before: what was leased while the engine was away
      // comes without waiting on the heartbeat's writes (a connection is rare; a heartbeat is not).
      void pull();
      void reportInventory();
      void syncEdge();
    });
    socket.on("connect_error", (error) => {
      // Transport errors: socket.io retries by itself, with backoff.
      if (socket?.active) return void logger.warn({ reason: error.message }, "cannot reach the control plane; retrying");
      // A refusal by the control plane's handshake: final only for a token it does not know.
      const refusal = handshakeRefusal.safeParse((error as Error & { data?: unknown }).data);
      if (!refusal.success || refusal.data.code === "UNAUTHORIZED") {
        logger.error({ reason: error.message }, "the control plane refused this engine");
        stop();
        options.onRefused?.(error.message);
        return;
      }
      const delayMs = handshakeRetry.next();
      logger.error({ reason: error.message, retryInSeconds: Math.round(delayMs / 1000) }, "the control plane did not accept this engine; retrying");
      setTimeout(() => {
        if (!stopped) socket?.connect();
      }, delayMs).unref();
    });
    socket.on("disconnect", (reason) => {
      logger.warn({ reason }, "disconnected from the control plane");
      shells.closeAll("the engine lost its connection to the control plane");
      // The server ends the session when the token is revoked: reconnecting shows whether it still holds.
      if (reason === "io server disconnect" && !stopped) setTimeout(() => socket?.connect(), 1000).unref();
    });

    const invalid = (name: string, reason: string) => logger.warn({ message: name, reason }, "ignored a control-plane message this engine cannot read");
    // A task this engine cannot read is refused by the pull as well (INVALID_ACK), and logged.
    client.on(
      socket,
      "task:available",
      ({ task }) => void pull(task ? [task] : []),
      (name, reason) => {
        invalid(name, reason);
        void pull();
      },
    );
    client.on(socket, "edge:changed", () => void syncEdge(), invalid);
    client.on(socket, "deployment:cancel", ({ deploymentId }) => engine.cancel(deploymentId), invalid);
    serveShellMessages(client, socket, shells, invalid);
  }

  let timer: NodeJS.Timeout | null = null;
  let metricsTimer: NodeJS.Timeout | null = null;
  let inventoryTimer: NodeJS.Timeout | null = null;
  function stop() {
    stopped = true;
    if (timer) clearInterval(timer);
    if (metricsTimer) clearInterval(metricsTimer);
    if (inventoryTimer) clearInterval(inventoryTimer);
    shells.closeAll("the engine stopped");
    socket?.disconnect();
  }

  return {
    engine,
    /** Whether the control plane holds this engine's connection now (the engine's readiness). */
    connected: () => socket?.connected === true,
    async start() {
      await engine.start();
      connect();
      timer = setInterval(() => void heartbeat(), options.heartbeatMs ?? 5000);
      const metricsMs = options.metricsIntervalMs ?? 5000;
      if (metricsMs > 0 && engine.metrics) metricsTimer = setInterval(() => void shipMetrics(), metricsMs);
      // The custom domains are pulled with the inventory too: a lost `edge:changed` costs a few minutes at most.
      inventoryTimer = setInterval(() => {
        void reportInventory();
        void syncEdge();
      }, options.inventoryIntervalMs ?? 300_000);
    },
    /** Stops talking to the control plane and supervising; the apps and the router keep running. */
    async shutdown() {
      await outbox.flush().catch(() => {});
      stop();
      await engine.shutdown();
      // Last: the lines the engine read while it stopped are journaled for the next engine.
      await outbox.close();
    },
  };
}
