import { z } from "zod";

/**
 * A Docker Engine API endpoint (Docker, or Podman's compatible service) as the engine dials it
 * (engine/runtime/docker/docker-host.ts): a unix socket by its absolute path, or plain HTTP.
 */
export const dockerHostUrl = z
  .string()
  .max(500)
  .regex(/^(unix:\/\/\/[^\s]+|tcp:\/\/[A-Za-z0-9.-]+:\d{1,5})$/, "give the Docker API as unix:///path/to/docker.sock or tcp://host:port");

/**
 * Where a `kubernetes` cluster builds the images of services from git (issue 18, item 4): in the
 * cluster (a build Job with Kaniko or BuildKit, the default), or on the engine's own host through
 * a Docker API there, with the same build plan and layer cache as the `docker` runtime; either
 * way the image is pushed to the cluster's registry and deployed by its digest.
 */
export const kubernetesImageBuild = z.discriminatedUnion("location", [
  z.object({ location: z.literal("cluster") }),
  z.object({ location: z.literal("engine-host"), dockerHost: dockerHostUrl }),
]);
export type KubernetesImageBuild = z.infer<typeof kubernetesImageBuild>;
