import path from "node:path";
import { z } from "zod";
import { sleepSetting } from "../release-store";
import { logCursor } from "./log-follower";

/**
 * What the docker runtime keeps under the engine's home (containers and images live in the
 * container engine; this is what ties them to services across engine restarts):
 *   docker/services/<serviceId>.json          the live container, status, restarts, log cursors
 *   docker/builds/<serviceId>/<releaseId>/src  a checkout, only while its image builds
 *   docker/jobs/<serviceId>/job.json           a JOB's built release, schedule and last run
 *   docker/jobs/<serviceId>/releases/<releaseId>/launch.json  how its runs start (0600: it holds env)
 *   docker/jobs/<serviceId>/releases/<releaseId>/runs/<runId>/ mounted into a run, for its outputs
 */
export function dockerLayout(home: string) {
  const root = path.join(home, "docker");
  return {
    servicesDir: path.join(root, "services"),
    stateFile: (serviceId: string) => path.join(root, "services", `${serviceId}.json`),
    buildDir: (serviceId: string, releaseId: string) => path.join(root, "builds", serviceId, releaseId),
    serviceBuildsDir: (serviceId: string) => path.join(root, "builds", serviceId),
    jobsDir: path.join(root, "jobs"),
    jobDir: (serviceId: string) => path.join(root, "jobs", serviceId),
    jobFile: (serviceId: string) => path.join(root, "jobs", serviceId, "job.json"),
    jobReleaseDir: (serviceId: string, releaseId: string) => path.join(root, "jobs", serviceId, "releases", releaseId),
  };
}
export type DockerLayout = ReturnType<typeof dockerLayout>;

/** A release's container. `port` is the host port it publishes on 127.0.0.1, where the router sends traffic. */
export const releaseContainer = z.object({
  releaseId: z.string(),
  containerId: z.string(),
  containerName: z.string(),
  image: z.string(),
  port: z.number().int(),
  containerPort: z.number().int(),
  commit: z.string().optional(),
  memoryLimitBytes: z.number().int().nullable(),
  restartPolicy: z.string(),
  startedAt: z.string(),
});
export type ReleaseContainer = z.infer<typeof releaseContainer>;

export const dockerServiceState = z.object({
  serviceId: z.string(),
  name: z.string(),
  kind: z.string(),
  domains: z.array(z.string()),
  current: releaseContainer.nullable(),
  status: z.enum(["starting", "running", "crashed", "stopped", "sleeping"]),
  /** Sleep when idle (issue 16): stopped, not removed, after this long without a request. */
  sleep: sleepSetting.optional(),
  /** Restarts of the live container by its restart policy (the Engine API's RestartCount). */
  restarts: z.number().int().nonnegative(),
  /** Per container id: how far its log was reported, so a restarted engine resumes there. */
  logCursors: z.record(z.string(), logCursor),
});
export type DockerServiceState = z.infer<typeof dockerServiceState>;

/** Labels on every container and image the runtime makes, to find them without the state files. */
export const LABELS = {
  managed: "dev.slipway.managed",
  serviceId: "dev.slipway.service-id",
  releaseId: "dev.slipway.release-id",
  commit: "dev.slipway.commit",
  /** Comma-separated names of secret variables, so runtime output stays masked after an engine restart. */
  secretKeys: "dev.slipway.secret-keys",
} as const;
