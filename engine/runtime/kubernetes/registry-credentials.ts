import type { V1Secret } from "@kubernetes/client-node";
import { z } from "zod";
import type { RegistryCredentials } from "../docker/push";
import { StepError } from "../runtime";
import type { KubeApi } from "./kube-api";
import type { KubernetesSettings } from "./settings";

/** A `.dockerconfigjson` (https://kubernetes.io/docs/concepts/configuration/secret/#docker-config-secrets): credentials by registry. */
const dockerConfig = z.object({
  auths: z.record(z.string(), z.object({ username: z.string().optional(), password: z.string().optional(), auth: z.string().optional() }).passthrough()),
});

/**
 * The push credentials of the cluster's registry for a build on the engine's host: the ones its
 * build Jobs push with, from the `kubernetes.io/dockerconfigjson` Secret the cluster names
 * (SLIPWAY_KUBE_REGISTRY_SECRET) in the engine's namespace, for the registry's host. Null when the
 * cluster names none (the registry takes anonymous pushes). The values stay in memory: they are
 * handed to the Docker API's push and never written or logged.
 */
export async function registryCredentials(api: KubeApi, settings: KubernetesSettings, registryHost: string): Promise<RegistryCredentials | null> {
  if (!settings.registrySecret) return null;
  const where = `Secret ${settings.engineNamespace}/${settings.registrySecret}`;
  let secret: V1Secret | null;
  try {
    secret = await api.get<V1Secret>({ apiVersion: "v1", kind: "Secret", namespace: settings.engineNamespace, name: settings.registrySecret });
  } catch (error) {
    throw new StepError(`could not read the registry's credentials (${where}): ${(error as Error).message}`);
  }
  const encoded = secret?.data?.[".dockerconfigjson"];
  if (!encoded) throw new StepError(`the registry's credentials are missing: ${where} does not exist or has no .dockerconfigjson`);
  let parsed: z.infer<typeof dockerConfig>;
  try {
    parsed = dockerConfig.parse(JSON.parse(Buffer.from(encoded, "base64").toString("utf8")));
  } catch {
    throw new StepError(`${where} is not a Docker config: its .dockerconfigjson must be {"auths": {"<registry>": {...}}}`);
  }
  const entry = Object.entries(parsed.auths).find(([key]) => hostOfKey(key) === hostOfKey(registryHost))?.[1];
  if (!entry) throw new StepError(`${where} has no credentials for ${registryHost}`);
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  const decoded = entry.auth ? Buffer.from(entry.auth, "base64").toString("utf8") : "";
  const colon = decoded.indexOf(":");
  if (colon <= 0) throw new StepError(`${where}'s entry for ${registryHost} has neither a username and password nor an auth of "user:password"`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Keys are a host (`registry.example.com:5000`) or a URL of it (`https://registry.example.com/v1/`); Docker Hub's is `https://index.docker.io/v1/`. */
function hostOfKey(key: string): string {
  const host = key.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  return host === "index.docker.io" || host === "registry-1.docker.io" ? "docker.io" : host;
}
