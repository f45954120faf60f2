import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import getPort from "get-port";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, recordingReporter, request, task } from "../../../test/engine-harness";
import { type GitServer, startGitServer } from "../../../test/git-server";
import { killProcessesUnder } from "../../../test/process-cleanup";
import { startPodman } from "../../../test/support/podman";
import { skipWithout } from "../../../test/support/requirements";
import { testToolchains } from "../../../test/support/toolchains";
import { createDockerEngine, type Engine, type EngineReporter } from "../../core";
import { applicationServiceSpec } from "../../protocol";

const appFixture = fileURLToPath(new URL("../../../test/fixtures/docker/app/", import.meta.url));

// Started while the file is collected, so that a machine without Podman skips with the reason.
const podman = await startPodman();

/**
 * Sleep when idle (issue 16, part 3) on the docker runtime, through a real Podman service, the
 * engine's router and a container built from a Dockerfile. A "minute" of `sleepAfterMinutes`
 * lasts 2 s here (`sleepMinuteMs`): the same mechanism as in production, in seconds.
 */
describe.skipIf(skipWithout("skip" in podman ? podman.skip : null))("docker engine: a container sleeps when idle and wakes on a request", () => {
  const service = "skip" in podman ? null! : podman;
  let git: GitServer;
  let home: string;
  let routerPort: number;
  let recording: ReturnType<typeof recordingReporter>;
  let engine: Engine;
  const engines: Engine[] = [];
  const id = randomUUID();
  const host = "napper-test.localhost";

  const newEngine = (reporter: EngineReporter) => {
    const created = createDockerEngine({
      home,
      routerPort,
      reporter,
      docker: service.docker,
      toolchains: testToolchains,
      tuning: { drainTimeoutMs: 2_000, stopGraceMs: 2_000, supervisionMs: 300, sleepMinuteMs: 2_000 },
    });
    engines.push(created);
    return created;
  };
  const state = () => engine.services().find((entry) => entry.serviceId === id);
  const containers = async () =>
    (await service.docker.listContainers({ all: true, filters: { label: [`dev.slipway.service-id=${id}`] } })).map((container) => ({
      id: container.Id,
      state: container.State,
    }));
  const get = (urlPath: string) => request(routerPort, host, urlPath);

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("napper", appFixture);
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-docker-sleep-")));
    routerPort = await getPort({ host: "127.0.0.1" });
    recording = recordingReporter();
    engine = newEngine(recording.reporter);
    await engine.start();
    const deploy = task("DEPLOY", [
      applicationServiceSpec.parse({
        id,
        name: "napper",
        kind: "APPLICATION",
        config: { git: { url: git.url("napper") }, healthCheckPath: "/health", sleepAfterMinutes: 2 },
        variables: [],
        domains: [host],
      }),
    ]);
    await engine.execute(deploy);
    expect(recording.final(deploy.deploymentId)?.status, JSON.stringify(recording.eventsOf(deploy.deploymentId))).toBe("succeeded");
  });

  afterAll(async () => {
    await Promise.all(engines.map((created) => created.shutdown().catch(() => undefined)));
    if (home) {
      await killProcessesUnder(home);
      await fs.rm(home, { recursive: true, force: true });
    }
    await git?.close();
    await service?.stop();
  });

  it("stops the container after the idle time, keeping it, and starts the same one on the next request, its files kept", async () => {
    // Written into the container's own file system: only the same container, started again, still has it.
    const session = await engine.exec!(id, ["sh", "-c", "echo kept > /www/nap.txt"], { tty: false });
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
    const system = recording.lines.filter((line) => line.stream.kind === "service").map((line) => line.text);
    expect(system).toContain("[slipway] asleep after 2 min without a request");
    expect(system.some((text) => text.startsWith("[slipway] woke up on a request (container slipway-napper-"))).toBe(true);
    // The container's log goes on where it stopped: its second start is there, once.
    await eventually(
      () => recording.lines.filter((line) => line.text.startsWith("starting version 1")).length === 2,
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
    await engine.shutdown();
    recording = recordingReporter();
    engine = newEngine(recording.reporter);
    await engine.start();
    // A few supervision passes: a stopped container of a running service would be reported crashed.
    await sleep(1_000);
    expect(state()).toMatchObject({ state: "sleeping", restarts: 0 });
    expect(recording.lines.some((line) => line.text.includes("exited with code"))).toBe(false);
    const woken = await get("/version.txt");
    expect(`${woken.status} ${woken.body.trim()}`).toBe("200 1");
    expect(state()?.state).toBe("running");
  });
});
