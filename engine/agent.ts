import { io, type Socket } from "socket.io-client";
import type { Logger } from "pino";
import type { Engine, EngineReporter } from "./core";
import { Outbox } from "./outbox";
import { ENGINE_NAMESPACE, engineTask, PROTOCOL_VERSION, serverToEngine, type EngineHandshake } from "./protocol/messages";
import { createSequence } from "./sequence";
import { createShellSessions } from "./shell-sessions";

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
  /** Called when the control plane refuses the token: the agent has stopped. */
  onRefused?: (reason: string) => void;
};

const ACK_TIMEOUT_MS = 10_000;

/**
 * The engine's link to the control plane. It connects out (nothing dials into a cluster),
 * pulls tasks when told one is available and on every heartbeat, ships events and log lines
 * through the outbox, and reconnects with backoff.
 */
export function createAgent(options: AgentOptions, makeEngine: (reporter: EngineReporter) => Engine) {
  const { logger } = options;
  const nextSeq = createSequence();
  let socket: Socket | null = null;
  let stopped = false;
  let pulling: Promise<void> | null = null;

  const request = async (name: string, payload: unknown): Promise<Record<string, unknown> | null> => {
    if (!socket?.connected) return null;
    try {
      return (await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(name, payload)) as Record<string, unknown>;
    } catch {
      return null;
    }
  };

  const outbox = new Outbox(async (name, payload) => {
    const answer = await request(name, payload);
    if (!answer) return false;
    if (answer.ok !== true) logger.warn({ message: name, error: answer.error }, "control plane refused a batch; dropping it");
    return true;
  });

  const reporter: EngineReporter = {
    event(deploymentId, event) {
      outbox.pushEvent(deploymentId, { ...event, seq: nextSeq(), at: event.at ?? new Date().toISOString() });
      void outbox.flush();
    },
    log(stream, fd, text, at) {
      outbox.pushLine(stream, { seq: nextSeq(), at: at ?? new Date().toISOString(), fd, text: text.slice(0, 16_384) });
      void outbox.flush();
    },
  };
  const engine = makeEngine(reporter);
  // Output goes out as it comes, unacknowledged: ordering is by seq, and a session whose engine
  // lost the control plane is ended (below) rather than buffered.
  const shells = createShellSessions({
    exec: engine.exec ? engine.exec.bind(engine) : undefined,
    send: (name, payload) => void socket?.emit(name, payload),
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
        const remove = answer?.ok && Array.isArray(answer.remove) ? (answer.remove as string[]) : [];
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

  async function pullAll() {
    for (;;) {
      const answer = await request("task:pull", {});
      if (!answer?.ok || !answer.task) return;
      const task = engineTask.safeParse(answer.task);
      if (!task.success) {
        logger.error({ issues: task.error.issues }, "received a task this engine cannot read");
        return;
      }
      const { deploymentId, attempt } = task.data;
      await request("task:ack", { deploymentId, attempt });
      logger.info({ deploymentId, attempt, action: task.data.snapshot.action }, "task received");
      void engine.execute(task.data).catch((error: unknown) => logger.error({ err: error, deploymentId }, "task failed unexpectedly"));
    }
  }

  function pull() {
    pulling ??= pullAll().finally(() => (pulling = null));
    return pulling;
  }

  async function heartbeat() {
    const answer = await request("engine:heartbeat", { activeDeployments: engine.activeDeployments(), services: engine.services() });
    if (answer?.ok && Array.isArray(answer.cancel)) for (const id of answer.cancel as string[]) engine.cancel(id);
    void outbox.flush();
    void pull();
  }

  function connect() {
    const auth: EngineHandshake = {
      token: options.token,
      protocolVersion: PROTOCOL_VERSION,
      engineVersion: options.engineVersion,
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
      logger.info({ url: options.url }, "connected to the control plane");
      void outbox.flush();
      void heartbeat();
      void reportInventory();
    });
    socket.on("connect_error", (error) => {
      // A refusal by the server's middleware (bad token) is final; transport errors retry with backoff.
      if (!socket?.active) {
        logger.error({ reason: error.message }, "the control plane refused this engine");
        stop();
        options.onRefused?.(error.message);
      } else {
        logger.warn({ reason: error.message }, "cannot reach the control plane; retrying");
      }
    });
    socket.on("disconnect", (reason) => {
      logger.warn({ reason }, "disconnected from the control plane");
      shells.closeAll("the engine lost its connection to the control plane");
      // The server ends the session when the token is revoked: reconnecting shows whether it still holds.
      if (reason === "io server disconnect" && !stopped) setTimeout(() => socket?.connect(), 1000).unref();
    });
    socket.on("task:available", () => void pull());
    socket.on("deployment:cancel", (payload: { deploymentId?: unknown }) => {
      if (typeof payload?.deploymentId === "string") engine.cancel(payload.deploymentId);
    });
    socket.on("shell:open", (payload: unknown, ack?: (answer: unknown) => void) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const parsed = serverToEngine["shell:open"].safeParse(payload);
      if (!parsed.success) return reply({ ok: false, error: { code: "INVALID", message: parsed.error.issues[0]?.message ?? "invalid shell request" } });
      shells.open(parsed.data).then(
        () => reply({ ok: true }),
        (error: unknown) => reply({ ok: false, error: { code: "UNAVAILABLE", message: (error as Error).message } }),
      );
    });
    socket.on("shell:input", (payload: unknown) => {
      const parsed = serverToEngine["shell:input"].safeParse(payload);
      if (parsed.success) shells.input(parsed.data);
    });
    socket.on("shell:resize", (payload: unknown) => {
      const parsed = serverToEngine["shell:resize"].safeParse(payload);
      if (parsed.success) shells.resize(parsed.data);
    });
    socket.on("shell:close", (payload: unknown) => {
      const parsed = serverToEngine["shell:close"].safeParse(payload);
      if (parsed.success) shells.close(parsed.data);
    });
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
    async start() {
      await engine.start();
      connect();
      timer = setInterval(() => void heartbeat(), options.heartbeatMs ?? 5000);
      const metricsMs = options.metricsIntervalMs ?? 5000;
      if (metricsMs > 0 && engine.metrics) metricsTimer = setInterval(() => void shipMetrics(), metricsMs);
      inventoryTimer = setInterval(() => void reportInventory(), options.inventoryIntervalMs ?? 300_000);
    },
    /** Stops talking to the control plane and supervising; the apps and the router keep running. */
    async shutdown() {
      await outbox.flush().catch(() => {});
      stop();
      await engine.shutdown();
    },
  };
}
