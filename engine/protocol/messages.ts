import { z } from "zod";
import { edgeState } from "./edge";
import { kubernetesImageBuild } from "./image-build";
import { deploymentEvent, logLine, logStream } from "./events";
import { metricSample } from "./metrics";
import { shellClose, shellExit, shellInput, shellKeepalive, shellOpenRequest, shellOutput, shellResize } from "./shell";
import { snapshot } from "./snapshot";

/**
 * The engine protocol: socket.io messages on the `/engine` namespace, one catalog per direction.
 * The engine initiates every connection; the control plane only notifies and answers.
 * A message's payload is validated on receipt; requests carry an acknowledgement whose schema
 * is part of the catalog.
 */
export const PROTOCOL_VERSION = 1;

/**
 * The protocol versions a control plane accepts: the one it speaks and the older ones it still
 * understands. Upgrading the control plane must not stop the engines of every cluster at once,
 * so a change that breaks old engines raises PROTOCOL_VERSION and keeps the previous version
 * here until engines have had a release to catch up (README, "Upgrading"). An engine outside the
 * range is refused with `protocolRefusal` and retries with backoff, so it reconnects by itself
 * once one side is upgraded.
 */
export const SUPPORTED_PROTOCOL_VERSIONS = { min: 1, max: PROTOCOL_VERSION } as const;

/**
 * Why the control plane refused an engine's handshake (socket.io's `error.data`). Only
 * UNAUTHORIZED (an unknown or revoked token) is final; the engine retries after the others,
 * with backoff: a control plane whose database is restarting answers UNAVAILABLE, and a
 * protocol mismatch ends once one side is upgraded.
 */
export const handshakeRefusal = z.discriminatedUnion("code", [
  z.object({ code: z.literal("UNAUTHORIZED") }),
  z.object({ code: z.literal("INVALID") }),
  z.object({ code: z.literal("UNAVAILABLE") }),
  z.object({ code: z.literal("PROTOCOL_VERSION"), supported: z.object({ min: z.number().int(), max: z.number().int() }) }),
]);
export type HandshakeRefusal = z.infer<typeof handshakeRefusal>;

/** Why an engine speaking `version` is refused, or null when the control plane accepts it. */
export function protocolMismatch(version: number): string | null {
  const { min, max } = SUPPORTED_PROTOCOL_VERSIONS;
  if (version < min) return `this engine speaks protocol ${version}, older than the control plane accepts (${min} to ${max}): upgrade the engine`;
  if (version > max) return `this engine speaks protocol ${version}, newer than the control plane accepts (${min} to ${max}): upgrade the control plane`;
  return null;
}

export const engineHandshake = z.object({
  token: z.string().min(1),
  protocolVersion: z.number().int().positive(),
  engineVersion: z.string().max(100),
  /**
   * A random id of the engine process, new at each start (optional: older engines send none).
   * A cluster's engine that connects with another boot id than before has restarted: the
   * deployments it was running are handed out again at once, not when their leases run out.
   */
  bootId: z.string().uuid().optional(),
  capabilities: z.object({
    runtime: z.enum(["local", "docker", "kubernetes"]),
    serviceKinds: z.array(z.string()),
    databases: z.array(z.string()).default([]),
    routerPort: z.number().int().optional(),
    /** The router's HTTPS port for custom domains (optional: older engines have none). */
    routerHttpsPort: z.number().int().optional(),
    /** The Docker Engine API version the `docker` runtime talks to (Docker or Podman's compatible service). */
    dockerApiVersion: z.string().max(50).optional(),
    /** How the runtime enforces a service's memory and CPU limits on this host; "none": it cannot (they are then only recorded). */
    limits: z.enum(["cgroup-v1", "cgroup-v2", "docker", "kubernetes", "none"]).optional(),
    /** The engine opens shells (`shell:open`) and ships metrics (`metrics:batch`). */
    shells: z.boolean().optional(),
    metrics: z.boolean().optional(),
    /**
     * How apps are isolated from the engine and each other: "bubblewrap" (local runtime, each in
     * its sandbox), "container" (docker), "none" (the host cannot: apps run only on a trusted
     * cluster); `sandboxProblem` says why not. Optional: older engines send none.
     */
    sandbox: z.enum(["bubblewrap", "container", "none"]).optional(),
    serviceUsers: z.boolean().optional(),
    sandboxProblem: z.string().max(1000).optional(),
    /** The engine can fence services off the host's loopback (engineTask.isolateLoopback); `loopbackFenceProblem` says why not. Optional: older engines send none. */
    loopbackFence: z.boolean().optional(),
    loopbackFenceProblem: z.string().max(1000).optional(),
  }),
});
export type EngineHandshake = z.infer<typeof engineHandshake>;

export const ackError = z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) });
const okAck = <T extends z.ZodRawShape>(shape: T) => z.union([z.object({ ok: z.literal(true), ...shape }), ackError]);

export const engineTask = z.object({
  deploymentId: z.string().uuid(),
  /** Counts dispatches of this deployment: a re-delivery after an expired lease has a higher one. */
  attempt: z.number().int().positive(),
  snapshot,
  /**
   * An ADMIN marked the cluster trusted: on a host that cannot sandbox apps, the engine runs them
   * unsandboxed instead of refusing (optional: older control planes send none, which is "no").
   */
  trusted: z.boolean().optional(),
  /**
   * An ADMIN asked that the cluster's services be cut off the host's loopback services other than
   * their environment's databases (issue 13): an engine that cannot do it refuses the deployment
   * (optional: older control planes send none, which is "no").
   */
  isolateLoopback: z.boolean().optional(),
  /** Where a `kubernetes` cluster builds images of git services (image-build.ts); absent: in the cluster, as older control planes meant. */
  kubernetesBuild: kubernetesImageBuild.optional(),
});
export type EngineTask = z.infer<typeof engineTask>;

export const jobRun = z.object({
  runId: z.string(),
  trigger: z.enum(["cron", "start", "stop", "delete"]),
  startedAt: z.string(),
  finishedAt: z.string(),
  outcome: z.enum(["succeeded", "failed", "timed_out", "canceled"]),
  exitCode: z.number().int().nullable(),
  attempts: z.number().int().positive(),
});
export type JobRun = z.infer<typeof jobRun>;

/**
 * Scheduled times of a cron JOB that passed while no engine ran it, found when an engine took
 * the job up again, and what it did about them (the job's `missedRuns` policy).
 */
export const missedRuns = z.object({
  count: z.number().int().positive(),
  /** Counting stopped at this many: there were at least `count`. */
  countCapped: z.boolean().optional(),
  firstAt: z.string(),
  lastAt: z.string(),
  action: z.enum(["ran-once", "skipped"]),
  /** When the engine found them, as it started. */
  detectedAt: z.string(),
  /** The run that made up for them ("ran-once"); `lastRun` until the next one. */
  runId: z.string().optional(),
});
export type MissedRuns = z.infer<typeof missedRuns>;

/** A service's files on the engine's host. */
export const diskUsage = z.object({ serviceId: z.string().uuid(), bytes: z.number().int().nonnegative() });
export type DiskUsage = z.infer<typeof diskUsage>;

export const runtimeServiceState = z.object({
  serviceId: z.string().uuid(),
  releaseId: z.string(),
  /** "idle": a JOB between runs; "sleeping": an application stopped after a while without requests, woken by the next one (issue 16). */
  state: z.enum(["starting", "running", "crashed", "stopped", "idle", "sleeping"]),
  restarts: z.number().int().nonnegative(),
  commit: z.string().optional(),
  port: z.number().int().optional(),
  /** The last time supervision restarted the release, and why (`killed for exceeding its memory limit of 64 MiB`). */
  lastRestart: z.object({ at: z.string(), reason: z.string().max(500), oomKilled: z.boolean().optional() }).optional(),
  /** A JOB's latest run: when it ended, how, after how many attempts. */
  lastRun: jobRun.optional(),
  /** A cron JOB's next run. */
  nextRunAt: z.string().optional(),
  /** A cron JOB's latest missed runs (optional: control planes that predate it drop it). */
  missed: missedRuns.optional(),
});
export type RuntimeServiceState = z.infer<typeof runtimeServiceState>;

/** The most tasks a heartbeat's acknowledgement carries; an engine that gets this many pulls the rest. */
export const HEARTBEAT_TASKS_MAX = 10;

/** Engine to control plane: name -> [payload, acknowledgement]. */
export const engineToServer = {
  "task:pull": [z.object({}), okAck({ task: engineTask.nullable() })],
  "task:ack": [z.object({ deploymentId: z.string().uuid(), attempt: z.number().int() }), okAck({})],
  "deployment:event": [z.object({ deploymentId: z.string().uuid(), events: z.array(deploymentEvent).min(1).max(500) }), okAck({})],
  "log:batch": [
    z.object({
      stream: logStream,
      lines: z.array(logLine).min(1).max(2000),
      /**
       * Sent while an earlier batch of its stream was unanswered (issue 17, item 7): stored only if
       * that one was, so a stream's lines are stored in seq order (optional: older engines send one
       * batch at a time, and older control planes drop the field).
       */
      pipelined: z.literal(true).optional(),
    }),
    okAck({}),
  ],
  "engine:heartbeat": [
    z.object({ activeDeployments: z.array(z.string().uuid()), services: z.array(runtimeServiceState) }),
    okAck({
      cancel: z.array(z.string().uuid()),
      /**
       * The tasks a `task:pull` would find now, oldest first, at most HEARTBEAT_TASKS_MAX (issue 17,
       * item 4): the heartbeat is the safety net for a lost `task:available`, and a pull after every
       * heartbeat doubled an idle fleet's round trips. An engine that gets the field takes them and
       * pulls only when it is full (there may be more); without it (an older control plane) it pulls
       * as before. Optional: engines that predate it drop it and pull, and still find these tasks.
       * Read when the web process may not know of them all (server/realtime/engine-gateway.ts,
       * TaskWatch): it heard every lease announced since its last read, and the engine acknowledged
       * them, then none waits and it answers none without reading.
       */
      tasks: z.array(engineTask).max(HEARTBEAT_TASKS_MAX).optional(),
    }),
  ],
  /**
   * What the engine keeps on disk per service (releases, a database's data), at connect and
   * every few minutes. The control plane answers with the services whose files the reaper
   * found left over (their service no longer exists): the engine removes them.
   */
  "engine:inventory": [z.object({ services: z.array(diskUsage).max(100_000) }), okAck({ remove: z.array(z.string().uuid()) })],
  /** Samples of the services' live releases, every few seconds; lossy by design (no outbox). */
  "metrics:batch": [z.object({ samples: z.array(metricSample).min(1).max(1000) }), okAck({})],
  /**
   * The custom domains of the cluster's services, their challenges and certificates (keys
   * included: only the engine of the cluster receives them), for its router.
   */
  "edge:pull": [z.object({}), okAck({ edge: edgeState })],
  /** Terminal output of a shell session, ordered by seq; mostly sent without acknowledgement, now and then with one so a session's output in flight stays bounded (engine/shell-sessions.ts). */
  "shell:output": [shellOutput, okAck({})],
  /** A shell session ended (the process exited, idled out or was closed). */
  "shell:exit": [shellExit, okAck({})],
} as const;

/** Control plane to engine: name -> payload. These are notifications; the engine re-reads state by pulling. */
export const serverToEngine = {
  /**
   * A task was leased to the cluster. The web process that holds the engine's socket sends the
   * task with it when it can (issue 17: the pull's round trip off the path of every dispatch);
   * without one, the engine pulls. Optional: engines that predate it drop it and pull.
   */
  "task:available": z.object({ task: engineTask.optional() }),
  "deployment:cancel": z.object({ deploymentId: z.string().uuid() }),
  /** The cluster's custom domains changed (added, verified, a certificate or challenge): pull them (`edge:pull`). */
  "edge:changed": z.object({}),
  /** Start a shell session; the one request of this direction: acknowledged per serverToEngineAcks. */
  "shell:open": shellOpenRequest,
  "shell:input": shellInput,
  "shell:resize": shellResize,
  "shell:close": shellClose,
  /** Sessions whose clients are still held (`keepaliveSeconds`); engines that predate it drop it. */
  "shell:keepalive": shellKeepalive,
} as const;

/** The acknowledgements engines answer control-plane requests with. */
export const serverToEngineAcks = {
  "shell:open": okAck({}),
} as const;

export type EngineToServer = typeof engineToServer;
export type EngineMessageName = keyof EngineToServer;
export type EnginePayload<N extends EngineMessageName> = z.infer<EngineToServer[N][0]>;
export type EngineAck<N extends EngineMessageName> = z.infer<EngineToServer[N][1]>;
export type ServerMessageName = keyof typeof serverToEngine;
export type ServerPayload<N extends ServerMessageName> = z.infer<(typeof serverToEngine)[N]>;

export const ENGINE_NAMESPACE = "/engine";
