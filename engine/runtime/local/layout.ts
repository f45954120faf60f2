import path from "node:path";
import { z } from "zod";
import { type PendingRelease, sleepSetting } from "../release-store";

/**
 * Where the local runtime keeps things under the engine's home:
 *   services/<serviceId>/state.json                      what runs (survives engine restarts)
 *   services/<serviceId>/releases/<releaseId>/src        the checkout (app dir = src/<rootDirectory>)
 *   services/<serviceId>/releases/<releaseId>/runtime.log the app's stdout (0600: the engine's only)
 *   services/<serviceId>/releases/<releaseId>/runtime.stderr.log its stderr (0600; releases started before it existed wrote both streams to runtime.log)
 *       (both kept bounded on disk: what the control plane stored is freed, all but their last part; release-disk.ts)
 *   services/<serviceId>/releases/<releaseId>/launch.json how to (re)start it (0600: it holds env)
 *   (a service's releases other than those in use, and the newest few besides, are removed: release-disk.ts)
 *   services/<serviceId>/home                            the service's HOME (its user's, 0700; caches)
 *   services/<serviceId>/sandbox/                        the passwd and group files its sandbox shows
 *   services/<serviceId>/user.json                       its uid (sandbox/service-users.ts)
 *   services/<serviceId>/fence.json                      its loopback fence: uid and ports allowed (sandbox/loopback-fence.ts)
 *   services/<serviceId>/data, run/                      a database's data and its socket and config
 *   services/<serviceId>/job.json                        a JOB's built release, schedule and last run
 *   router/                                              routes.json, pid file, control socket
 *   toolchains/node/<version>/                           a Node and its npm, shared by services, read-only to them (toolchains/)
 * (and, for every runtime, what engine/engine-files.ts lists).
 */
export function layout(home: string) {
  const servicesDir = path.join(home, "services");
  return {
    servicesDir,
    serviceDir: (serviceId: string) => path.join(servicesDir, serviceId),
    stateFile: (serviceId: string) => path.join(servicesDir, serviceId, "state.json"),
    releaseDir: (serviceId: string, releaseId: string) => path.join(servicesDir, serviceId, "releases", releaseId),
    launchFile: (serviceId: string, releaseId: string) => path.join(servicesDir, serviceId, "releases", releaseId, "launch.json"),
    dataDir: (serviceId: string) => path.join(servicesDir, serviceId, "data"),
    runDir: (serviceId: string) => path.join(servicesDir, serviceId, "run"),
    jobFile: (serviceId: string) => path.join(servicesDir, serviceId, "job.json"),
    toolchainsDir: path.join(home, "toolchains"),
  };
}
export type Layout = ReturnType<typeof layout>;

/** A release's process: pid doubles as process group id (spawned detached). */
export const releaseProcess = z.object({
  releaseId: z.string(),
  commit: z.string().optional(),
  port: z.number().int(),
  pid: z.number().int(),
  /** Kernel start time of pid, to tell our process from a recycled pid. */
  startTime: z.number(),
  startedAt: z.string(),
  /** The control groups holding its memory and CPU limits (engine/runtime/local/cgroups.ts), when it has any. */
  cgroups: z.array(z.string()).optional(),
  stopSignal: z.enum(["SIGTERM", "SIGINT", "SIGQUIT"]).optional(),
});
export type ReleaseProcess = z.infer<typeof releaseProcess>;

export const serviceState = z.object({
  serviceId: z.string(),
  name: z.string(),
  domains: z.array(z.string()),
  /** The release the router sends traffic to (or would, once started again). */
  current: releaseProcess.nullable(),
  status: z.enum(["starting", "running", "crashed", "stopped", "sleeping"]),
  sleep: sleepSetting.optional(),
  /** Crash restarts since the service was deployed. */
  restarts: z.number().int().nonnegative(),
  /**
   * Bytes of each release's log files already reported, so a restarted engine resumes there:
   * runtime.log's under the release id, runtime.stderr.log's under `<release id>:stderr`.
   */
  logOffsets: z.record(z.string(), z.number().int().nonnegative()),
  /**
   * Under the same keys, where byte 0 of a log file lies in its history (log-tailer.ts), for a
   * file truncated under the app (a logrotate copytruncate): the offsets above count that history,
   * not the file's bytes. Absent: never truncated, offsets are the file's.
   */
  logBases: z.record(z.string(), z.number().int().nonnegative()).optional(),
  /** The last crash restart and its reason, reported with the service's state. */
  lastRestart: z.object({ at: z.string(), reason: z.string(), oomKilled: z.boolean().optional() }).optional(),
});
export type ServiceState = z.infer<typeof serviceState>;

const processUser = z.object({ uid: z.number().int(), gid: z.number().int() });

export const sandboxSpec = z.object({
  user: processUser.nullable(),
  writable: z.array(z.string()),
  readonly: z.array(z.string()),
  identity: z.object({ passwd: z.string(), group: z.string() }).nullable(),
});

/** How `env` was made from the service's variables (release-env.ts), to make it again with new ones at a restart. */
export const envRecipe = z.object({
  base: z.record(z.string(), z.string()),
  pathPrefix: z.array(z.string()),
  over: z.record(z.string(), z.string()),
});
export type EnvRecipe = z.infer<typeof envRecipe>;

export const launchSpec = z.object({
  argv: z.array(z.string()).min(1),
  cwd: z.string(),
  env: z.record(z.string(), z.string()),
  /** Absent in the launch files of releases built before restarts applied variables, and of databases. */
  envRecipe: envRecipe.optional(),
  /** Which env keys are secret, so runtime output is masked after an engine restart too. */
  secretKeys: z.array(z.string()),
  /** The service's memory and CPU limits, applied at every (re)start where the host allows. */
  limits: z.object({ memoryMb: z.number().optional(), cpus: z.number().optional() }).optional(),
  /** The port it must listen on (databases: applications were told it); otherwise any free port, passed as PORT. */
  port: z.number().int().optional(),
  /** The OS user it runs as outside a sandbox (databases on a trusted cluster, when the engine is root); the engine's own user otherwise. */
  user: processUser.optional(),
  /** The sandbox it runs in (sandbox/sandbox.ts); absent only on a trusted cluster whose host cannot sandbox. */
  sandbox: sandboxSpec.optional(),
  /** The signal that stops it quickly and cleanly (PostgreSQL's fast shutdown is SIGINT). */
  stopSignal: z.enum(["SIGTERM", "SIGINT", "SIGQUIT"]).optional(),
});
export type LaunchSpec = z.infer<typeof launchSpec>;

/** A release of the local runtime between its new-release step and the switch. */
export type LocalRelease = PendingRelease<ReleaseProcess> & {
  launch?: LaunchSpec;
  /** The database server stopped to make way for this release: started again if this one never goes live. */
  stoppedServer?: { releaseId: string; launch: LaunchSpec };
};
