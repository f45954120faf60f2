import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { testPort } from "../../../test/support/ports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, recordingReporter, request, task } from "../../../test/engine-harness";
import { type GitServer, startGitServer } from "../../../test/git-server";
import { killProcessesUnder } from "../../../test/process-cleanup";
import { type PodmanService, startPodman } from "../../../test/support/podman";
import { skipWithout } from "../../../test/support/requirements";
import { testToolchains } from "../../../test/support/toolchains";
import { createDockerEngine, type Engine } from "../../core";
import { applicationServiceSpec, containerServiceSpec, type ServiceSpec } from "../../protocol";

const appFixture = fileURLToPath(new URL("../../../test/fixtures/docker/app/", import.meta.url));

// Started while the file is collected, so that a machine without Podman skips with the reason.
const podman = await startPodman();
const skip = skipWithout("skip" in podman ? podman.skip : null);
afterAll(() => ("skip" in podman ? undefined : podman.stop()));

/**
 * Engines on one home and router port, on the real Podman service, a "minute" of
 * `sleepAfterMinutes` lasting 2 s (`sleepMinuteMs`): the same mechanism as in production, in
 * seconds. What both kinds of sleeping service below are driven by.
 */
function sleepyEngines(service: PodmanService, serviceId: string, host: string) {
  const engines: Engine[] = [];
  const harness = {
    home: "",
    routerPort: 0,
    recording: recordingReporter(),
    engine: null as unknown as Engine,
    async start() {
      harness.home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-docker-sleep-")));
      harness.routerPort = await testPort();
      await harness.startEngine();
    },
    /** A new engine on the same home (after the previous one shut down), reporting to a new recording. */
    async startEngine() {
      harness.recording = recordingReporter();
      harness.engine = createDockerEngine({
        home: harness.home,
        routerPort: harness.routerPort,
        reporter: harness.recording.reporter,
        docker: service.docker,
        toolchains: testToolchains,
        tuning: { drainTimeoutMs: 2_000, stopGraceMs: 2_000, supervisionMs: 300, sleepMinuteMs: 2_000 },
      });
      engines.push(harness.engine);
      await harness.engine.start();
    },
    async deploy(spec: ServiceSpec) {
      const deploy = task("DEPLOY", [spec]);
      await harness.engine.execute(deploy);
      expect(harness.recording.final(deploy.deploymentId)?.status, JSON.stringify(harness.recording.eventsOf(deploy.deploymentId))).toBe("succeeded");
    },
    state: () => harness.engine.services().find((entry) => entry.serviceId === serviceId),
    containers: async () =>
      (await service.docker.listContainers({ all: true, filters: { label: [`dev.slipway.service-id=${serviceId}`] } })).map((container) => ({
        id: container.Id,
        state: container.State,
      })),
    get: (urlPath: string) => request(harness.routerPort, host, urlPath),
    /** The service's log lines that the runtime wrote, not the container. */
    systemLines: () => harness.recording.lines.filter((line) => line.stream.kind === "service" && line.text.startsWith("[slipway]")).map((line) => line.text),
    async close() {
      await Promise.all(engines.map((created) => created.shutdown().catch(() => undefined)));
      if (!harness.home) return;
      await killProcessesUnder(harness.home);
      await fs.rm(harness.home, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Sleep when idle (issue 16, part 3) on the docker runtime, through a real Podman service and the engine's router: an APPLICATION built from a Dockerfile. */
describe.skipIf(skip)("docker engine: an application's container sleeps when idle and wakes on a request", () => {
  let git: GitServer;
  const id = randomUUID();
  const napper = sleepyEngines("skip" in podman ? null! : podman, id, "napper-test.localhost");
  const { state, containers, get } = napper;

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("napper", appFixture);
    await napper.start();
    await napper.deploy(
      applicationServiceSpec.parse({
        id,
        name: "napper",
        kind: "APPLICATION",
        config: { git: { url: git.url("napper") }, healthCheckPath: "/health", sleepAfterMinutes: 2 },
        variables: [],
        domains: ["napper-test.localhost"],
      }),
    );
  });

  afterAll(async () => {
    await napper.close();
    await git?.close();
  });

  it("stops the container after the idle time, keeping it, and starts the same one on the next request, its files kept", async () => {
    // Written into the container's own file system: only the same container, started again, still has it.
    const session = await napper.engine.exec!(id, ["sh", "-c", "echo kept > /www/nap.txt"], { tty: false });
    const ended = new Promise((resolve) => session.once("end", resolve));
    session.resume();
    session.end();
    await ended;
    expect((await get("/nap.txt")).body.trim()).toBe("kept");
    const [awake] = await containers();

    await eventually(() => state()?.state === "sleeping", 15_000, "the service to fall asleep");
    await eventually(async () => (await containers())[0]?.state === "exited", 10_000, "its container to stop");
    expect((await containers()).map((container) => container.id)).toEqual([awake!.id]);

    const woken = await get("/nap.txt");
    expect(woken).toMatchObject({ status: 200 });
    expect(woken.body.trim()).toBe("kept");
    expect(state()).toMatchObject({ state: "running", restarts: 0 });
    expect(await containers()).toEqual([{ id: awake!.id, state: "running" }]);
    const system = napper.systemLines();
    expect(system).toContain("[slipway] asleep after 2 min without a request");
    expect(system.some((text) => text.startsWith("[slipway] woke up on a request (container slipway-napper-"))).toBe(true);
    // The container's log goes on where it stopped: its second start is there, once.
    await eventually(
      () => napper.recording.lines.filter((line) => line.text.startsWith("starting version 1")).length === 2,
      10_000,
      "the woken container's first line",
    );
  });

  it("answers every request sent while the container is being stopped", async () => {
    await eventually(() => state()?.state === "sleeping", 15_000, "the service to start falling asleep");
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, index) => {
        await sleep(index * 25);
        return get("/version.txt");
      }),
    );
    expect(answers.map((answer) => `${answer.status} ${answer.body.trim()}`)).toEqual(new Array(20).fill("200 1"));
    expect(state()?.state).toBe("running");
  });

  it("keeps sleeping across an engine restart, not taken for a crash, and the next engine wakes it", async () => {
    await eventually(() => state()?.state === "sleeping", 15_000, "the service to fall asleep");
    await eventually(async () => (await containers())[0]?.state === "exited", 10_000, "its container to stop");
    await napper.engine.shutdown();
    await napper.startEngine();
    // A few supervision passes: a stopped container of a running service would be reported crashed.
    await sleep(1_000);
    expect(state()).toMatchObject({ state: "sleeping", restarts: 0 });
    expect(napper.recording.lines.some((line) => line.text.includes("exited with code"))).toBe(false);
    const woken = await get("/version.txt");
    expect(`${woken.status} ${woken.body.trim()}`).toBe("200 1");
    expect(state()?.state).toBe("running");
  });
});

/**
 * A CONTAINER service (an existing image run as it is) sleeps and wakes as an application does
 * (issue 16, part 3). The container counts its starts in its own file system and serves the
 * count: a wake answers with the next number, from the same container.
 */
describe.skipIf(skip)("docker engine: a CONTAINER service sleeps when idle and wakes on a request", () => {
  const id = randomUUID();
  const dozer = sleepyEngines("skip" in podman ? null! : podman, id, "dozer-test.localhost");
  const { state, containers, get } = dozer;
  const starts = async () => {
    const answer = await get("/starts");
    return `${answer.status} ${answer.body.trim()}`;
  };

  beforeAll(async () => {
    await dozer.start();
    await dozer.deploy(
      containerServiceSpec.parse({
        id,
        name: "dozer",
        kind: "CONTAINER",
        config: {
          image: { name: "localhost/slipway-busybox", tag: "test" },
          command: [
            "sh",
            "-c",
            'echo $(( $(cat /www/starts 2>/dev/null || echo 0) + 1 )) > /www/starts; echo "start $(cat /www/starts)"; trap "exit 0" TERM; httpd -f -p "$PORT" -h /www & wait $!',
          ],
          healthCheckPath: "/starts",
          healthCheckTimeoutSeconds: 10,
          // The most insistent policy: a stop to sleep is a manual stop, which it leaves stopped.
          restartPolicy: "always",
          sleepAfterMinutes: 2,
        },
        variables: [],
        domains: ["dozer-test.localhost"],
      }),
    );
  });

  afterAll(() => dozer.close());

  it("stops the container after the idle time, keeping it, and the first request through the router starts it again and gets its answer", async () => {
    expect(await starts()).toBe("200 1");
    const [awake] = await containers();

    await eventually(() => state()?.state === "sleeping", 15_000, "the service to fall asleep");
    await eventually(async () => (await containers())[0]?.state === "exited", 10_000, "its container to stop");
    // Supervision passes (every 300 ms) and its restart policy leave it stopped: not a crash.
    await sleep(1_000);
    expect(await containers()).toEqual([{ id: awake!.id, state: "exited" }]);
    expect(state()).toMatchObject({ state: "sleeping", restarts: 0 });

    // Held by the router while the same container starts again and answers its health check.
    expect(await starts()).toBe("200 2");
    expect(state()).toMatchObject({ state: "running", restarts: 0 });
    expect(await containers()).toEqual([{ id: awake!.id, state: "running" }]);
    const system = dozer.systemLines();
    expect(system).toContain("[slipway] asleep after 2 min without a request");
    expect(system.some((text) => text.startsWith("[slipway] woke up on a request (container slipway-dozer-"))).toBe(true);
    await eventually(() => dozer.recording.lines.some((line) => line.text === "start 2"), 10_000, "the woken container's first line");
  });

  it("answers every request sent while the container is being stopped, from the container started once more", async () => {
    await eventually(() => state()?.state === "sleeping", 15_000, "the service to start falling asleep");
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, index) => {
        await sleep(index * 25);
        return get("/starts");
      }),
    );
    // The first may still reach the container before the router holds its requests: it answers 2.
    expect(answers.map((answer) => answer.status)).toEqual(new Array(20).fill(200));
    expect(answers.map((answer) => answer.body.trim()).every((body) => body === "2" || body === "3")).toBe(true);
    expect(state()?.state).toBe("running");
    expect(await starts()).toBe("200 3");
  });
});
