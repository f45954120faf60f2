/**
 * Image builds and runtime logs of the kubernetes runtime, through the KubeApi seam held by the
 * test (testing/scripted-api.ts), with objects from the Kubernetes API reference
 * (testing/api-objects.ts). No cluster builds or runs anything here.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { V1Job } from "@kubernetes/client-node";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { eventually } from "../../../test/engine-harness";
import type { ApplicationServiceSpec, ServiceSpec } from "../../protocol";
import type { StepContext } from "../runtime";
import { buildImage } from "./builds";
import { PodLogFollower } from "./pod-logs";
import { defaultKubernetesSettings } from "./settings";
import { buildPod, pod, withJobStatus } from "./testing/api-objects";
import { ScriptedKubeApi } from "./testing/scripted-api";
import { application, release, scope } from "./testing/services";

const settings = { ...defaultKubernetesSettings, registry: "registry.example.com/slipway", registrySecret: "registry-push" };
const service = {
  ...application,
  variables: [...application.variables, { key: "NPM_TOKEN", value: "npm-secret-token", secret: true }],
  config: {
    ...(application as ApplicationServiceSpec).config,
    git: { url: "https://git.example.com/shop/web.git", rootDirectory: "", credentials: { username: "x-access-token", password: "ghs_gitsecret" } },
    docker: { dockerfile: "Dockerfile", context: "", buildArgs: ["NPM_TOKEN"] },
  },
} as ApplicationServiceSpec;

function context(lines: string[]): StepContext<ServiceSpec> {
  return {
    deploymentId: release.deploymentId,
    service,
    scope,
    signal: new AbortController().signal,
    trusted: false,
    isolateLoopback: false,
    databasePorts: [],
    output: (_fd, text) => void lines.push(text),
  };
}

async function build(api: ScriptedKubeApi, outcome: "complete" | "backoff-limit", lines: string[]) {
  const built = buildImage({
    api,
    settings,
    ctx: context(lines),
    service,
    scope,
    release: { ...release, commit: "4f2c1e9d2b7a" },
    appDir: "/unused",
    retry: { baseMs: 1, maxMs: 5 },
  });
  await api.watching("Job");
  await api.watching("Pod");
  const name = "build-web-20261206093000-7e2a91c4";
  const podName = `${name}-abcde`;
  api.logLines.set(`${podName}/clone`, ["Cloning 4f2c1e9d2b7a"]);
  api.logLines.set(`${podName}/build`, [
    "INFO[0001] Retrieving image manifest node:22-slim",
    "INFO[0042] Pushing image to registry.example.com/slipway/shop-production/web:20261206093000-7e2a91c4",
  ]);
  // The output is shown while the Job runs: each container's from the moment it starts.
  api.emit("ADDED", buildPod(podName, name, "slipway-system", "cloning"));
  await eventually(() => lines.includes("Cloning 4f2c1e9d2b7a"), 5_000, "the clone's output");
  api.emit("MODIFIED", buildPod(podName, name, "slipway-system", "building"));
  await eventually(() => lines.some((line) => line.startsWith("INFO[0042]")), 5_000, "the build's output");
  expect(api.logReads).toEqual([
    { container: `${podName}/clone`, options: { follow: true } },
    { container: `${podName}/build`, options: { follow: true } },
  ]);
  api.emit("MODIFIED", withJobStatus(api.stored<V1Job>("Job", "slipway-system", name)!, outcome));
  return built;
}

describe("kubernetes runtime: image builds", () => {
  it("builds in a Job of the engine's namespace, pushes to the cluster's registry, shows the output and removes the build's Secret", async () => {
    const api = new ScriptedKubeApi();
    const lines: string[] = [];
    await expect(build(api, "complete", lines)).resolves.toBe("registry.example.com/slipway/shop-production/web:20261206093000-7e2a91c4");
    expect(api.applied.map(({ object }) => `${object.kind} ${object.metadata?.namespace}/${object.metadata?.name}`)).toEqual([
      "Secret slipway-system/build-web-20261206093000-7e2a91c4",
      "Job slipway-system/build-web-20261206093000-7e2a91c4",
    ]);
    const secret = api.applied[0]!.object as unknown as { data: Record<string, string> };
    expect(Buffer.from(secret.data.GIT_URL!, "base64").toString()).toBe("https://x-access-token:ghs_gitsecret@git.example.com/shop/web.git");
    expect(Buffer.from(secret.data.BUILD_ARG_NPM_TOKEN!, "base64").toString()).toBe("npm-secret-token");
    // The Job names the commit and reads every secret from the Secret.
    const job = JSON.stringify(api.applied[1]!.object);
    expect(job).toContain("4f2c1e9d2b7a");
    expect(job).not.toContain("ghs_gitsecret");
    expect(job).not.toContain("npm-secret-token");
    expect(lines.filter((line) => !line.startsWith("Building"))).toEqual([
      "Cloning 4f2c1e9d2b7a",
      "INFO[0001] Retrieving image manifest node:22-slim",
      "INFO[0042] Pushing image to registry.example.com/slipway/shop-production/web:20261206093000-7e2a91c4",
    ]);
    expect(api.deleted).toEqual(["Secret/slipway-system/build-web-20261206093000-7e2a91c4"]);
  });

  it("fails with the Job's reason, and still removes the build's Secret; refuses to build without a registry", async () => {
    const api = new ScriptedKubeApi();
    await expect(build(api, "backoff-limit", [])).rejects.toThrow("the build Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit");
    expect(api.deleted).toEqual(["Secret/slipway-system/build-web-20261206093000-7e2a91c4"]);
    await expect(buildImage({ api, settings: defaultKubernetesSettings, ctx: context([]), service, scope, release, appDir: "/unused" })).rejects.toThrow(
      "the cluster has no image registry for builds: set SLIPWAY_KUBE_REGISTRY on its engine",
    );
  });
});

describe("kubernetes runtime: builds from ssh repositories", () => {
  const key = "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ-ssh-deploy-key\r\n-----END OPENSSH PRIVATE KEY-----";
  const sshService = {
    ...service,
    config: { ...service.config, git: { url: "git@git.example.com:shop/web.git", rootDirectory: "", credentials: { sshPrivateKey: key } } },
  } as ApplicationServiceSpec;

  it("hands the build Job the deploy key and the host keys the engine's clone accepted, in its Secret only, and removes it after", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-known-hosts-"));
    const knownHosts = path.join(dir, "known_hosts");
    // A line as ssh writes it on accepting a new host (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT).
    await fs.writeFile(knownHosts, "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n");
    try {
      const api = new ScriptedKubeApi();
      const ctx = { ...context([]), service: sshService, git: { allowLocalRepositories: false, sshKnownHostsFile: knownHosts } };
      const built = buildImage({
        api,
        settings,
        ctx,
        service: sshService,
        scope,
        release: { ...release, commit: "4f2c1e9d2b7a" },
        appDir: "/unused",
        retry: { baseMs: 1, maxMs: 5 },
      });
      await api.watching("Job");
      const name = "build-web-20261206093000-7e2a91c4";
      api.emit("MODIFIED", withJobStatus(api.stored<V1Job>("Job", "slipway-system", name)!, "complete"));
      await built;
      const secret = api.applied[0]!.object as unknown as { data: Record<string, string> };
      expect(Buffer.from(secret.data.GIT_URL!, "base64").toString()).toBe("git@git.example.com:shop/web.git");
      expect(Buffer.from(secret.data["ssh-privatekey"]!, "base64").toString()).toBe(`${key.replace(/\r\n/g, "\n")}\n`);
      expect(Buffer.from(secret.data.known_hosts!, "base64").toString()).toContain("git.example.com ssh-ed25519");
      const job = api.applied[1]!.object as V1Job;
      expect(JSON.stringify(job)).not.toContain("ssh-deploy-key");
      expect(job.spec!.template.spec!.initContainers![0]!.env!.map((variable) => variable.name)).toEqual(["GIT_URL", "GIT_SSH_COMMAND"]);
      expect(api.deleted).toEqual([`Secret/slipway-system/${name}`]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses without the host's key from the engine's own clone", async () => {
    const api = new ScriptedKubeApi();
    const ctx = { ...context([]), service: sshService, git: { allowLocalRepositories: false, sshKnownHostsFile: "/nonexistent/known_hosts" } };
    await expect(buildImage({ api, settings, ctx, service: sshService, scope, release, appDir: "/unused" })).rejects.toThrow(
      "the engine has no known_hosts entry for the repository's host",
    );
    expect(api.applied).toEqual([]);
  });
});

describe("kubernetes runtime: logs", () => {
  it("follows every running container of the services' pods, each line with its pod's name, release and time", async () => {
    const api = new ScriptedKubeApi();
    const shipped: { serviceId: string; releaseId: string; text: string; at?: string }[] = [];
    const follower = new PodLogFollower({
      api,
      logger: pino({ level: "silent" }),
      serviceLog: (serviceId, releaseId, text, _fd, at) => void shipped.push({ serviceId, releaseId, text, ...(at ? { at } : {}) }),
      retry: { baseMs: 1, maxMs: 5 },
    });
    const labels = { "slipway.dev/service-id": application.id, "slipway.dev/release-id": release.releaseId };
    api.seed(pod("web-7d4b9c8f6d-a1", labels, "shop-production", "running"), pod("web-7d4b9c8f6d-b2", labels, "shop-production", "image-pull"));
    api.logLines.set("web-7d4b9c8f6d-a1/app", ["2026-12-06T09:30:07.123456789Z listening on 3000", "2026-12-06T09:30:08.000000001Z GET /healthz 200"]);
    follower.start(["shop-production"]);
    await eventually(() => shipped.length === 2, 5_000, "two lines");
    follower.stop();
    expect(shipped).toEqual([
      { serviceId: application.id, releaseId: release.releaseId, text: "[web-7d4b9c8f6d-a1] listening on 3000", at: "2026-12-06T09:30:07.123Z" },
      { serviceId: application.id, releaseId: release.releaseId, text: "[web-7d4b9c8f6d-a1] GET /healthz 200", at: "2026-12-06T09:30:08.000Z" },
    ]);
  });
});
