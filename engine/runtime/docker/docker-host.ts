import Docker from "dockerode";

/**
 * The Docker Engine API endpoint of a `docker` cluster: Docker itself, or Podman's compatible
 * service (`podman system service unix:///path.sock`). `unix:///path` or `tcp://host:port`
 * (plain HTTP, as DOCKER_HOST=tcp:// means without TLS settings).
 */
export type DockerHost = { url: string; docker: Docker };

export type DockerEngineInfo = {
  /** The Engine API version the server speaks (Docker: e.g. 1.47; Podman's compatible API: 1.41). */
  apiVersion: string;
  /** Server product and version, e.g. "Docker Engine 27.3.1" or "Podman Engine 4.3.1". */
  server: string;
};

export function dockerClient(url: string): Docker {
  if (url.startsWith("unix://")) {
    const socketPath = url.slice("unix://".length);
    if (!socketPath.startsWith("/")) throw new Error(`invalid Docker host ${url}: expected unix:///absolute/path.sock`);
    return new Docker({ socketPath });
  }
  if (url.startsWith("tcp://") || url.startsWith("http://")) {
    const parsed = new URL(url.replace(/^tcp:/, "http:"));
    return new Docker({ host: parsed.hostname, port: Number(parsed.port || 2375), protocol: "http" });
  }
  throw new Error(`invalid Docker host ${url}: expected unix:///path/to/docker.sock or tcp://host:port`);
}

/** The Engine API is unreachable or not an Engine API: the engine cannot serve its cluster. */
export class DockerUnreachable extends Error {
  override name = "DockerUnreachable";
}

/**
 * Connects and asks the server for its version (GET /version). Throws DockerUnreachable with
 * "cannot reach the Docker Engine API at <url>: <reason>" when nothing answers in time.
 */
export async function connectDocker(url: string, timeoutMs = 5_000): Promise<DockerHost & { info: DockerEngineInfo }> {
  let docker: Docker;
  try {
    docker = dockerClient(url);
  } catch (error) {
    throw new DockerUnreachable(`cannot reach the Docker Engine API at ${url}: ${(error as Error).message}`);
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const version = await Promise.race([
      docker.version(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000}s`)), timeoutMs);
      }),
    ]);
    if (!version || typeof version.ApiVersion !== "string") throw new Error("the answer to GET /version has no ApiVersion: is this a Docker Engine API?");
    const product = version.Components?.[0]?.Name ?? "Docker Engine";
    return { url, docker, info: { apiVersion: version.ApiVersion, server: `${product} ${version.Version}` } };
  } catch (error) {
    throw new DockerUnreachable(`cannot reach the Docker Engine API at ${url}: ${describeError(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** A readable reason from dockerode/docker-modem errors (they carry the server's JSON message). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const withJson = error as Error & { json?: { message?: string; cause?: string } | string | null; statusCode?: number; code?: string };
  if (withJson.json && typeof withJson.json === "object" && withJson.json.message) return withJson.json.message;
  if (typeof withJson.json === "string" && withJson.json.trim()) return withJson.json.trim();
  return error.message;
}

export function statusCodeOf(error: unknown): number | undefined {
  return (error as { statusCode?: number } | null)?.statusCode;
}
