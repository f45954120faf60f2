import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { testPort } from "./ports";

const run = promisify(execFile);

/** The manifest media types a registry may answer with (Docker schema 2, OCI): what a pull asks for. */
const MANIFEST_TYPES = [
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.index.v1+json",
].join(", ");

export type ImageRegistry = {
  /** `127.0.0.1:<port>`: the host part of image names pushed to it. */
  host: string;
  /** The manifest of `repository:reference` as the registry's HTTP API serves it (GET /v2/<name>/manifests/<reference>), or its status when it has none. */
  manifest(
    repository: string,
    reference: string,
    credentials?: { username: string; password: string },
  ): Promise<{ status: number; digest: string | null; mediaType: string | null }>;
  stop(): Promise<void>;
};

/**
 * A real image registry on 127.0.0.1 (Debian's `docker-registry`, the CNCF distribution
 * registry) on a free port, its storage and config file in a temporary directory; with
 * `credentials`, it takes only those (an htpasswd file made by apache2-utils' `htpasswd`, bcrypt).
 * Returns why not when the binary is missing, so tests that need it skip saying so.
 */
export async function startImageRegistry(options: { credentials?: { username: string; password: string } } = {}): Promise<ImageRegistry | { skip: string }> {
  const binary = "/usr/bin/docker-registry";
  if (!(await fs.stat(binary).catch(() => null))) return { skip: "docker-registry is not installed (apt-get install docker-registry apache2-utils)" };
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-registry-"));
  const port = await testPort();
  const host = `127.0.0.1:${port}`;
  let auth = "";
  if (options.credentials) {
    const { stdout } = await run("htpasswd", ["-Bbn", options.credentials.username, options.credentials.password]);
    await fs.writeFile(path.join(dir, "htpasswd"), stdout);
    auth = `auth:\n  htpasswd:\n    realm: slipway-test\n    path: ${path.join(dir, "htpasswd")}\n`;
  }
  const config = path.join(dir, "config.yml");
  await fs.writeFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, "data")}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${auth}`,
  );
  const log = await fs.open(path.join(dir, "registry.log"), "a");
  const child: ChildProcess = spawn(binary, ["serve", config], { stdio: ["ignore", log.fd, log.fd] });
  await log.close();
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
    }
    await fs.rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  // GET /v2/ answers 200, or 401 with credentials required, once the registry listens.
  for (;;) {
    const status = await fetch(`http://${host}/v2/`).then(
      (response) => response.status,
      () => null,
    );
    if (status === 200 || status === 401) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const output = await fs.readFile(path.join(dir, "registry.log"), "utf8").catch(() => "");
      await stop();
      throw new Error(`docker-registry did not answer on ${host}:\n${output.slice(-2000)}`);
    }
    await sleep(50);
  }
  return {
    host,
    async manifest(repository, reference, credentials) {
      const response = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, {
        headers: {
          accept: MANIFEST_TYPES,
          ...(credentials ? { authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}` } : {}),
        },
      });
      await response.arrayBuffer();
      return { status: response.status, digest: response.headers.get("docker-content-digest"), mediaType: response.headers.get("content-type") };
    },
    stop,
  };
}
