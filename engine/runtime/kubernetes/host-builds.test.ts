/**
 * Builds on the engine's host for a `kubernetes` cluster (issue 18, item 4), for real where it
 * can be: a real git server, a real Podman serving the Docker API (the build, with the `docker`
 * runtime's build code), and real image registries on 127.0.0.1 (Debian's `docker-registry`, the
 * CNCF distribution registry, one open and one behind htpasswd credentials) that the engine pushes
 * to and the test asks through their HTTP API. The cluster side is the KubeApi seam held by the
 * test (testing/scripted-api.ts), not an API server: it holds the registry's Secret the engine
 * reads and receives the Deployment the engine applies, whose rollout the test reports done.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { V1Deployment } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordingReporter, task } from "../../../test/engine-harness";
import { type GitServer, startGitServer } from "../../../test/git-server";
import { type ImageRegistry, startImageRegistry } from "../../../test/support/image-registry";
import { startPodman } from "../../../test/support/podman";
import { skipWithout } from "../../../test/support/requirements";
import { testToolchains } from "../../../test/support/toolchains";
import { createKubernetesEngine } from "../../kubernetes-engine";
import { applicationServiceSpec, type EngineTask, type ServiceSpec } from "../../protocol";
import { kubernetesNamespace } from "../../protocol/kubernetes-names";
import { defaultKubernetesSettings, type KubernetesSettings } from "./settings";
import { withDeploymentStatus } from "./testing/api-objects";
import { validateManifest } from "./testing/schemas";
import { ScriptedKubeApi } from "./testing/scripted-api";

const PUSHER = { username: "slipway-pusher", password: "pu5h-Secret-9f3k" };

// Started while the file is collected, so that a machine without them skips with the reason.
const openRegistry = await startImageRegistry();
const lockedRegistry = await startImageRegistry({ credentials: PUSHER });
const registries = [openRegistry, lockedRegistry].filter((registry): registry is ImageRegistry => !("skip" in registry));
const podman = await startPodman({ insecureRegistries: registries.map((registry) => registry.host) });
const missing = "skip" in openRegistry ? openRegistry.skip : "skip" in lockedRegistry ? lockedRegistry.skip : "skip" in podman ? podman.skip : null;

describe.skipIf(skipWithout(missing))("kubernetes runtime: images built on the engine's host through a Docker API", () => {
  const docker = "skip" in podman ? null! : podman;
  const open = openRegistry as ImageRegistry;
  const locked = lockedRegistry as ImageRegistry;
  let git: GitServer;
  let home: string;
  let commit: string;

  /** The app: a Dockerfile on the busybox image Podman holds (no registry is reachable for a base image). */
  const APP = {
    Dockerfile: [
      `FROM ${"skip" in podman ? "" : podman.baseImage}`,
      "COPY . /app",
      'RUN echo "compiling the greeting" && echo hello > /app/greeting.txt',
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/app"]',
      "",
    ].join("\n"),
    "index.html": "<p>hello</p>\n",
  };

  const web = (repository: string): ServiceSpec =>
    applicationServiceSpec.parse({
      id: randomUUID(),
      name: "web",
      kind: "APPLICATION",
      config: { git: { url: git.url(repository) }, port: 8080 },
      variables: [],
      domains: [],
    });

  /** Runs a DEPLOY on an engine of `settings` building on the Podman host; reports the rollout done if the Deployment comes. */
  async function deploy(settings: KubernetesSettings, service: ServiceSpec, api = new ScriptedKubeApi()) {
    const recording = recordingReporter();
    const engine = createKubernetesEngine({
      home,
      routerPort: 0,
      reporter: recording.reporter,
      api,
      settings,
      toolchains: testToolchains,
      tuning: { retry: { baseMs: 1, maxMs: 5 } },
    });
    const deployment: EngineTask = { ...task("DEPLOY", [service]), kubernetesBuild: { location: "engine-host", dockerHost: docker.url } };
    const namespace = kubernetesNamespace(deployment.snapshot.project.name, deployment.snapshot.environment.name, deployment.snapshot.environment.id);
    const running = engine.execute(deployment);
    // The rollout is the cluster's to report: once the Deployment is watched, it is available (or the deployment ended before).
    const rolledOut = Promise.race([
      api.watching("Deployment").then(() => {
        const applied = api.stored<V1Deployment>("Deployment", namespace, "web")!;
        api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
      }),
      running,
    ]);
    await rolledOut;
    await running;
    await engine.shutdown();
    const output = recording.lines
      .filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId)
      .map((line) => line.text)
      .join("\n");
    return {
      namespace,
      output,
      steps: recording.eventsOf(deployment.deploymentId).map((event) => `${event.step} ${event.status}`),
      failed: recording.eventsOf(deployment.deploymentId).find((event) => event.status === "failed" && event.step !== "deployment"),
      final: recording.final(deployment.deploymentId),
      deployment: api.stored<V1Deployment>("Deployment", namespace, "web"),
    };
  }

  /** The registry's push credentials as the cluster holds them: a dockerconfigjson Secret in the engine's namespace. */
  const pushSecret = (host: string) => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "registry-push", namespace: "slipway-system" },
    type: "kubernetes.io/dockerconfigjson",
    data: {
      ".dockerconfigjson": Buffer.from(
        JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${PUSHER.username}:${PUSHER.password}`).toString("base64") } } }),
      ).toString("base64"),
    },
  });

  beforeAll(async () => {
    git = await startGitServer();
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-k8s-app-"));
    commit = await git.createRepo("greeting", empty, APP);
    await git.createRepo("broken", empty, {
      Dockerfile: `FROM ${docker.baseImage}\nRUN echo "compiling the greeting" && echo "error: greeting.c:3: missing semicolon" >&2 && exit 3\n`,
    });
    await fs.rm(empty, { recursive: true, force: true });
    home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-k8s-host-builds-"));
  }, 120_000);

  afterAll(async () => {
    await git?.close();
    if (!("skip" in podman)) await podman.stop();
    for (const registry of registries) await registry.stop();
    if (home) await fs.rm(home, { recursive: true, force: true });
  });

  it("builds with the docker runtime's build, pushes to the cluster's registry, and deploys the image by the digest the registry stored", async () => {
    const settings: KubernetesSettings = { ...defaultKubernetesSettings, registry: `${open.host}/slipway` };
    const service = web("greeting");
    const result = await deploy(settings, service);
    expect(result.final?.status, result.output).toBe("succeeded");
    expect(result.steps.slice(0, 4)).toEqual(["deployment started", "clone started", "clone succeeded", "build started"]);
    expect(result.steps).toContain("build succeeded");

    // The registry has the image: its manifest by the tag the engine pushed, and the same by the digest the Deployment names.
    const repository = `slipway/${result.namespace}/web`;
    const image = result.deployment!.spec!.template.spec!.containers[0]!.image!;
    const match = new RegExp(`^${open.host}/${repository}@(sha256:[0-9a-f]{64})$`).exec(image);
    expect(match, image).not.toBeNull();
    const digest = match![1]!;
    const byDigest = await open.manifest(repository, digest);
    expect(byDigest).toMatchObject({ status: 200, digest });
    const tag = /Pushing \S+:([0-9a-f]{24}) without credentials/.exec(result.output)?.[1];
    expect(tag, result.output).toBeDefined();
    expect(await open.manifest(repository, tag!)).toMatchObject({ status: 200, digest });
    // The applied Deployment is still one the API accepts.
    expect(() => validateManifest(result.deployment!)).not.toThrow();

    // The build's output came as the build step's log: the Dockerfile's RUN, then the push.
    expect(result.output).toContain("Building on the engine's host through the Docker API at unix://");
    expect(result.output).toContain("compiling the greeting");
    expect(result.output).toContain(`Pushed ${open.host}/${repository}@${digest}`);
    expect(result.output.indexOf("compiling the greeting")).toBeLessThan(result.output.indexOf("Pushed "));

    // The image is the app's: run from the registry's copy, it serves the file its build wrote.
    const served = await docker.podman("run", "--rm", "--entrypoint", "cat", image, "/app/greeting.txt");
    expect(served).toBe("hello");
    expect(result.deployment!.metadata!.annotations).toMatchObject({ "slipway.dev/commit": commit });

    // A second deploy of the same commit reuses the host's image (the docker runtime's cache) and the same digest.
    const again = await deploy(settings, service);
    expect(again.final?.status, again.output).toBe("succeeded");
    expect(again.output).toContain("was built from this commit and these build inputs already; skipping the build");
    expect(again.deployment!.spec!.template.spec!.containers[0]!.image).toBe(`${open.host}/slipway/${again.namespace}/web@${digest}`);
  }, 240_000);

  it("pushes to a registry that takes credentials with the cluster's, never shows them, and fails the build step without them", async () => {
    const settings: KubernetesSettings = { ...defaultKubernetesSettings, registry: `${locked.host}/slipway`, registrySecret: "registry-push" };
    const api = new ScriptedKubeApi();
    api.seed(pushSecret(locked.host));
    const result = await deploy(settings, web("greeting"), api);
    expect(result.final?.status, result.output).toBe("succeeded");
    expect(result.output).toContain(`as ${PUSHER.username}`);
    expect(result.output).not.toContain(PUSHER.password);
    const repository = `slipway/${result.namespace}/web`;
    const digest = result.deployment!.spec!.template.spec!.containers[0]!.image!.split("@")[1]!;
    // The registry refuses to show it to anyone else, and has it for the pusher.
    expect((await locked.manifest(repository, digest)).status).toBe(401);
    expect(await locked.manifest(repository, digest, PUSHER)).toMatchObject({ status: 200, digest });

    // The cluster names no push credentials: the registry refuses the push, and the build step fails saying so.
    const refused = await deploy({ ...settings, registrySecret: null }, web("greeting"));
    expect(refused.final?.status).toBe("failed");
    expect(refused.failed?.step).toBe("build");
    expect(refused.failed?.message).toMatch(/could not push .*unauthorized|authentication required/i);
    expect(refused.deployment).toBeUndefined();

    // The cluster names a Secret it does not hold: the build step fails before building.
    const missingSecret = await deploy(settings, web("greeting"));
    expect(missingSecret.failed).toMatchObject({ step: "build", message: expect.stringContaining("Secret slipway-system/registry-push does not exist") });
    expect(missingSecret.output).not.toContain("Building on the engine's host");
  }, 240_000);

  it("fails the deployment at its build step with the build's output when the build fails, and pushes nothing", async () => {
    const settings: KubernetesSettings = { ...defaultKubernetesSettings, registry: `${open.host}/slipway` };
    const result = await deploy(settings, web("broken"));
    expect(result.final?.status).toBe("failed");
    expect(result.failed?.step).toBe("build");
    expect(result.failed?.message).toContain("docker build failed");
    expect(result.output).toContain("compiling the greeting");
    expect(result.output).toContain("error: greeting.c:3: missing semicolon");
    expect(result.output).not.toContain("Pushing ");
    expect(result.deployment).toBeUndefined();
  }, 240_000);
});
