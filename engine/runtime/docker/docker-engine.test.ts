import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { testPort } from "../../../test/support/ports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, recordingReporter, request, task } from "../../../test/engine-harness";
import { type GitServer, startGitServer } from "../../../test/git-server";
import { killProcessesUnder } from "../../../test/process-cleanup";
import { startPodman } from "../../../test/support/podman";
import { skipWithout } from "../../../test/support/requirements";
import { testToolchains } from "../../../test/support/toolchains";
import { createDockerEngine, type Engine, type EngineReporter } from "../../core";
import { applicationServiceSpec, containerServiceSpec, jobServiceSpec, type ServiceSpec } from "../../protocol";
import type { ExecSession } from "../runtime";
import { PIDS_LIMIT, ROOT_CAPABILITIES } from "./hardening";

/** Bit numbers of the capabilities in /proc/<pid>/status masks (linux/capability.h). */
const CAPABILITY_BITS: Record<(typeof ROOT_CAPABILITIES)[number], number> = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  FOWNER: 3,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  NET_BIND_SERVICE: 10,
};

const appFixture = fileURLToPath(new URL("../../../test/fixtures/docker/app/", import.meta.url));
const jobsFixture = fileURLToPath(new URL("../../../test/fixtures/apps/jobs/", import.meta.url));
/** The jobs fixture's scripts in an image: a JOB on the docker runtime is built from its Dockerfile. */
const JOBS_DOCKERFILE = "FROM localhost/slipway-busybox:test\nCOPY . /job\nWORKDIR /job\n";
const SECRET = "tok-d0cker-secret-42";
const REGISTRY_PASSWORD = "registry-pa55word-xyz";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** engine/main.ts as its own process (as `slipway engine` runs it) with a docker runtime. */
function engineProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "engine/main.ts")], {
    cwd: repoRoot,
    env: { ...process.env, SLIPWAY_ENGINE_TOKEN: "test-token", SLIPWAY_ROUTER_HOST: "127.0.0.1", LOG_LEVEL: "info", SLIPWAY_ENGINE_RUNTIME: "docker", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe("docker engine without a reachable Engine API", () => {
  it("refuses to start, naming the Docker host and the reason", async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-docker-refused-"));
    try {
      const child = engineProcess({
        SLIPWAY_ENGINE_URL: "http://127.0.0.1:9",
        SLIPWAY_ENGINE_HOME: home,
        SLIPWAY_ROUTER_PORT: "0",
        SLIPWAY_DOCKER_HOST: `unix://${home}/missing/docker.sock`,
      });
      expect(await child.exited).toBe(1);
      expect(child.output()).toContain(`cannot reach the Docker Engine API at unix://${home}/missing/docker.sock: connect ENOENT ${home}/missing/docker.sock`);
      // Nothing was started: no router, no state.
      expect(await fs.readdir(home)).toEqual([]);
    } finally {
      await fs.rm(home, { recursive: true, force: true });
    }
  });
});

// Started while the file is collected, so that a machine without Podman skips with the reason.
const podman = await startPodman();

describe.skipIf(skipWithout("skip" in podman ? podman.skip : null))("docker engine on a real Podman service", () => {
  const service = "skip" in podman ? null! : podman;
  let git: GitServer;
  let home: string;
  let routerPort: number;
  let recording: ReturnType<typeof recordingReporter>;
  let engine: Engine;
  const engines: Engine[] = [];
  let firstCommit: string;
  let secondCommit: string;

  const newEngine = (reporter: EngineReporter) => {
    const created = createDockerEngine({
      home,
      routerPort,
      reporter,
      docker: service.docker,
      toolchains: testToolchains,
      tuning: { drainTimeoutMs: 3_000, stopGraceMs: 2_000, supervisionMs: 300 },
    });
    engines.push(created);
    return created;
  };
  const webId = randomUUID();
  const web = (variables: { key: string; value: string; secret: boolean }[] = []) =>
    applicationServiceSpec.parse({
      id: webId,
      name: "web",
      kind: "APPLICATION",
      config: { git: { url: git.url("site") }, healthCheckPath: "/health", healthCheckTimeoutSeconds: 3, docker: { buildArgs: ["GREETING", "HEALTHY"] } },
      variables: [
        { key: "GREETING", value: "hello", secret: false },
        { key: "HEALTHY", value: "yes", secret: false },
        { key: "API_TOKEN", value: SECRET, secret: true },
        ...variables,
      ].filter((variable, index, all) => all.findLastIndex((other) => other.key === variable.key) === index),
      domains: ["web-test.localhost"],
    });
  /** A CONTAINER service of the busybox image the Podman fixture builds, serving HTTP on its port at `<name>-test.localhost`. */
  const busyboxService = (name: string, config: Record<string, unknown> = {}) =>
    containerServiceSpec.parse({
      id: randomUUID(),
      name,
      kind: "CONTAINER",
      config: {
        image: { name: "localhost/slipway-busybox", tag: "test" },
        command: ["sh", "-c", 'trap "exit 0" TERM; httpd -f -p "$PORT" -h /'],
        port: 3000,
        ...config,
      },
      variables: [],
      domains: [`${name}-test.localhost`],
    });
  const get = (host: string, urlPath = "/") => request(routerPort, host, urlPath);
  const version = async () => {
    const response = await get("web-test.localhost", "/version.txt");
    if (response.status !== 200) throw new Error(`router answered ${response.status}: ${response.body}`);
    return response.body.trim();
  };
  const containersOf = async (serviceId: string) =>
    (await service.docker.listContainers({ all: true, filters: { label: [`dev.slipway.service-id=${serviceId}`] } })).map((container) => container.Id);
  const deploy = async (spec: ServiceSpec) => {
    const deployment = task("DEPLOY", [spec]);
    await engine.execute(deployment);
    return { id: deployment.deploymentId, events: recording.eventsOf(deployment.deploymentId), final: recording.final(deployment.deploymentId) };
  };
  const readAll = (stream: Duplex) =>
    new Promise<string>((resolve, reject) => {
      let text = "";
      stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
      stream.once("end", () => resolve(text));
      stream.once("error", reject);
    });

  beforeAll(async () => {
    git = await startGitServer();
    firstCommit = await git.createRepo("site", appFixture);
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-docker-")));
    routerPort = await testPort();
    recording = recordingReporter();
    engine = newEngine(recording.reporter);
    await engine.start();
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

  it("builds the Dockerfile with build arguments and serves the container through the router", async () => {
    const { events, final } = await deploy(web());
    expect(final?.status, JSON.stringify(events)).toBe("succeeded");
    expect(events.map((event) => `${event.step}:${event.status}`)).toEqual([
      "deployment:started",
      ...["clone", "build", "start", "health_check", "switch", "drain"].flatMap((step) => [`${step}:started`, `${step}:succeeded`]),
      "deployment:succeeded",
    ]);
    expect(events.find((event) => event.step === "clone" && event.status === "succeeded")?.commit).toBe(firstCommit);
    expect(await version()).toBe("1");
    expect((await get("web-test.localhost", "/greeting.txt")).body.trim()).toBe("hello");
    // .dockerignore applies to the build context.
    expect((await get("web-test.localhost", "/README.md")).status).toBe(404);
    const build = recording.lines.filter((line) => line.stream.kind === "deployment").map((line) => line.text);
    expect(build.some((line) => /^Building Dockerfile into localhost\/slipway\/web-[0-9a-f]{8}:[0-9a-f]{24}$/.test(line))).toBe(true);
    expect(build.some((line) => line.includes("COPY www /www"))).toBe(true);
    expect(engine.services()).toEqual([expect.objectContaining({ serviceId: webId, state: "running", restarts: 0, commit: firstCommit })]);
    expect(await containersOf(webId)).toHaveLength(1);
  });

  it("streams the container's output to the service's log, secrets masked", async () => {
    const line = await eventually(
      () => recording.lines.find((entry) => entry.stream.kind === "service" && entry.text.startsWith("starting version 1")),
      10_000,
      "startup line",
    );
    expect(line.text).toContain("with token ****");
    expect(recording.lines.some((entry) => entry.text.includes(SECRET))).toBe(false);
  });

  it("redeploys a new commit with zero failed requests under a steady request loop, then removes the old container", async () => {
    const before = await containersOf(webId);
    secondCommit = await git.pushDirectory("site", appFixture, { "www/version.txt": "2\n" });
    const failures: string[] = [];
    let served = 0;
    let looping = true;
    const loop = (async () => {
      while (looping) {
        try {
          const response = await get("web-test.localhost", "/version.txt");
          if (response.status === 200) served += 1;
          else failures.push(`${response.status} ${response.body}`);
        } catch (error) {
          failures.push(String(error));
        }
        await sleep(20);
      }
    })();
    const { final } = await deploy(web());
    await sleep(200);
    looping = false;
    await loop;
    expect(final?.status).toBe("succeeded");
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(10);
    expect(await version()).toBe("2");
    expect(engine.services()[0]?.commit).toBe(secondCommit);
    const after = await containersOf(webId);
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
  });

  it("skips the build of an unchanged commit and reuses its image", async () => {
    const { events, final } = await deploy(web());
    expect(final?.status).toBe("succeeded");
    const build = events.find((event) => event.step === "build" && event.status === "succeeded");
    expect(build?.message).toMatch(/^unchanged: reusing image localhost\/slipway\/web-[0-9a-f]{8}:[0-9a-f]{24}$/);
    expect(await version()).toBe("2");
  });

  it("keeps the old container serving when the new one fails its health check", async () => {
    const before = await containersOf(webId);
    // A different build argument is a different build: its image lacks /health.
    const { events, final } = await deploy(web([{ key: "HEALTHY", value: "no", secret: false }]));
    expect(final?.status).toBe("failed");
    expect(events.find((event) => event.status === "failed" && event.serviceId)).toMatchObject({
      step: "health_check",
      message: expect.stringContaining("health check GET /health did not answer 2xx within 3s (last status 404)"),
    });
    expect(events.some((event) => event.step === "switch")).toBe(false);
    expect(await version()).toBe("2");
    expect(await containersOf(webId)).toEqual(before);
  });

  it("cancels during a slow build and keeps the previous container serving", async () => {
    const before = await containersOf(webId);
    await git.pushDirectory("site", appFixture, {
      "www/version.txt": "3\n",
      "slow.txt": "RUN echo building slowly && sleep 30\n",
      Dockerfile: `${await fs.readFile(path.join(appFixture, "Dockerfile"), "utf8")}RUN echo building slowly && sleep 30\n`,
    });
    const deployment = task("DEPLOY", [web()]);
    const running = engine.execute(deployment);
    await eventually(() => recording.lines.some((line) => line.stream.kind === "deployment" && line.text === "building slowly"), 15_000, "slow build running");
    const canceledAt = Date.now();
    engine.cancel(deployment.deploymentId);
    await running;
    expect(Date.now() - canceledAt).toBeLessThan(3_000);
    expect(
      recording
        .eventsOf(deployment.deploymentId)
        .filter((event) => event.status === "canceled")
        .map((event) => event.step),
    ).toEqual(["build", "deployment"]);
    expect(await version()).toBe("2");
    expect(await containersOf(webId)).toEqual(before);
    await git.pushDirectory("site", appFixture, { "www/version.txt": "2\n" });
  });

  it("runs a command in the live container through exec", async () => {
    const session = await engine.exec!(webId, ["sh", "-c", 'cat /www/version.txt; read line; echo "got:$line"; exit 3'], { tty: false });
    const output = readAll(session);
    session.end("hello\n");
    expect(await output).toBe("2\ngot:hello\n");
    expect(await (session as ExecSession).exited).toBe(3);

    const tty = await engine.exec!(webId, ["sh"], { tty: true, cols: 100, rows: 30 });
    const ttyOutput = readAll(tty);
    tty.write("stty size; exit\n");
    expect(await ttyOutput).toContain("30 100");
  });

  it("samples the container's metrics from the stats API", async () => {
    const sample = await engine.sample!(webId);
    expect(sample).toMatchObject({ restarts: 0, memoryLimitBytes: null });
    expect(sample.memoryBytes).toBeGreaterThan(0);
    expect(sample.cpuPercent).toBeGreaterThanOrEqual(0);
  });

  it("resumes the container's log after an engine restart, repeating nothing and losing nothing", async () => {
    // Lines written to PID 1's stdout land in the container's log like the app's own.
    const mark = async (text: string) => {
      const session = await engine.exec!(webId, ["sh", "-c", `echo ${text} > /proc/1/fd/1`], { tty: false });
      await readAll(session);
    };
    await mark("marker-before");
    await eventually(() => recording.lines.some((line) => line.text === "marker-before"), 10_000, "marker before the restart");
    await engine.shutdown();

    // Lines written while no engine runs are shipped by the next one.
    const second = recordingReporter();
    engine = newEngine(second.reporter);
    const gap = await service.docker.listContainers({ filters: { label: [`dev.slipway.service-id=${webId}`] } });
    await service.podman("exec", gap[0]!.Id, "sh", "-c", "echo marker-while-down > /proc/1/fd/1");
    await engine.start();
    expect(engine.services()[0]).toMatchObject({ serviceId: webId, state: "running", commit: secondCommit });
    await mark("marker-after");
    await eventually(() => second.lines.some((line) => line.text === "marker-after"), 10_000, "marker after the restart");
    await sleep(500);
    const texts = second.lines.filter((line) => line.stream.kind === "service").map((line) => line.text);
    expect(texts.filter((text) => text.startsWith("marker-"))).toEqual(["marker-while-down", "marker-after"]);
    expect(texts.some((text) => text.startsWith("starting version"))).toBe(false);
    recording = second;
  });

  it("rolls back by deploying the earlier commit: its image is reused", async () => {
    const rollback = applicationServiceSpec.parse({ ...web(), config: { ...web().config, git: { ...web().config.git, ref: { commit: firstCommit } } } });
    const { events, final } = await deploy(rollback);
    expect(final?.status).toBe("succeeded");
    expect(events.find((event) => event.step === "build" && event.status === "succeeded")?.message).toMatch(/^unchanged: reusing image /);
    expect(await version()).toBe("1");
  });

  it("keeps a stop that lands while supervision inspects the container: the service stays stopped, not running nor crashed", async () => {
    // An engine of its own, whose Docker client can hold one inspection of a container back.
    let held: { reached: () => void; release: Promise<void> } | null = null;
    const docker = new Proxy(service.docker, {
      get(target, property) {
        if (property !== "getContainer") return Reflect.get(target, property, target);
        return (id: string) => {
          const container = target.getContainer(id);
          const inspect = container.inspect.bind(container);
          container.inspect = (async (...args: Parameters<typeof inspect>) => {
            const info = await inspect(...args);
            const hold = held;
            held = null;
            if (hold) {
              hold.reached();
              await hold.release;
            }
            return info;
          }) as typeof container.inspect;
          return container;
        };
      },
    });
    const raceHome = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-docker-race-")));
    const racePort = await testPort();
    const raced = recordingReporter();
    const racing = createDockerEngine({
      home: raceHome,
      routerPort: racePort,
      reporter: raced.reporter,
      docker,
      toolchains: testToolchains,
      tuning: { drainTimeoutMs: 3_000, stopGraceMs: 2_000, supervisionMs: 100 },
    });
    engines.push(racing);
    try {
      await racing.start();
      const spec = busyboxService("raced");
      const deployment = task("DEPLOY", [spec]);
      await racing.execute(deployment);
      expect(raced.final(deployment.deploymentId)?.status).toBe("succeeded");

      // A supervision pass has read the container running, and waits; the stop runs to its end meanwhile.
      let release!: () => void;
      const reached = new Promise<void>((resolve) => (held = { reached: resolve, release: new Promise<void>((done) => (release = done)) }));
      await reached;
      const stop = task("STOP", [spec]);
      await racing.execute(stop);
      expect(raced.final(stop.deploymentId)?.status).toBe("succeeded");
      release();
      // Passes after the held one: none may take the stopped container for a running or a crashed one.
      await sleep(1_000);
      expect(racing.services().find((entry) => entry.serviceId === spec.id)).toMatchObject({ state: "stopped" });
      expect((await request(racePort, "raced-test.localhost", "/")).status).toBe(503);
      await racing.execute(task("DELETE", [spec]));
    } finally {
      await racing.shutdown().catch(() => undefined);
      await killProcessesUnder(raceHome);
      await fs.rm(raceHome, { recursive: true, force: true });
    }
  });

  it("runs a CONTAINER service from a local image with its variables, then stops and deletes it", async () => {
    const spec = containerServiceSpec.parse({
      id: randomUUID(),
      name: "hello",
      kind: "CONTAINER",
      config: {
        image: { name: "localhost/slipway-busybox", tag: "test", credentials: { username: "robot", password: REGISTRY_PASSWORD } },
        command: ["sh", "-c", 'trap "exit 0" TERM; echo "$GREETING" > /www/index.html; httpd -f -p "$PORT" -h /www & wait $!'],
        port: 3000,
        healthCheckTimeoutSeconds: 5,
      },
      variables: [{ key: "GREETING", value: "hello from a container service", secret: false }],
      domains: ["hello-test.localhost"],
    });
    const { events, final } = await deploy(spec);
    expect(final?.status, JSON.stringify(events)).toBe("succeeded");
    expect(events.map((event) => `${event.step}:${event.status}`)).not.toContain("clone:started");
    expect(events.find((event) => event.step === "build" && event.status === "succeeded")?.message).toBe("image localhost/slipway-busybox:test present");
    expect((await get("hello-test.localhost")).body.trim()).toBe("hello from a container service");

    const stop = task("STOP", [spec]);
    await engine.execute(stop);
    expect(recording.final(stop.deploymentId)?.status).toBe("succeeded");
    expect((await get("hello-test.localhost")).status).toBe(503);

    const remove = task("DELETE", [spec]);
    await engine.execute(remove);
    expect(recording.final(remove.deploymentId)?.status).toBe("succeeded");
    expect(await containersOf(spec.id)).toEqual([]);
    expect((await get("hello-test.localhost")).status).toBe(404);
  });

  it("fails clearly when a CONTAINER image is missing and cannot be pulled, the registry password masked", async () => {
    const spec = containerServiceSpec.parse({
      id: randomUUID(),
      name: "missing",
      kind: "CONTAINER",
      config: { image: { name: "localhost:1/slipway/missing", tag: "1", credentials: { username: "robot", password: REGISTRY_PASSWORD } } },
      variables: [],
      domains: ["missing-test.localhost"],
    });
    const { events, final } = await deploy(spec);
    expect(final?.status).toBe("failed");
    expect(events.find((event) => event.status === "failed" && event.serviceId)).toMatchObject({
      step: "build",
      message: expect.stringContaining("could not pull image localhost:1/slipway/missing:1"),
    });
    const everything = JSON.stringify([recording.events, recording.lines]);
    expect(everything).not.toContain(REGISTRY_PASSWORD);
    expect(await containersOf(spec.id)).toEqual([]);
  });

  it("enforces a memory limit: the OOM-killed container is restarted by its policy and the restart is reported", async () => {
    const spec = containerServiceSpec.parse({
      id: randomUUID(),
      name: "hungry",
      kind: "CONTAINER",
      config: {
        image: { name: "localhost/slipway-busybox", tag: "test" },
        // Serves, then replaces PID 1 with a process that needs 64 MiB.
        command: [
          "sh",
          "-c",
          'echo up > /www/index.html; httpd -p "$PORT" -h /www; sleep 3; echo allocating; exec dd if=/dev/zero of=/dev/null bs=64M count=1',
        ],
        resources: { memoryMb: 16 },
        restartPolicy: "on-failure",
        healthCheckTimeoutSeconds: 3,
      },
      variables: [],
      domains: ["hungry-test.localhost"],
    });
    const { final } = await deploy(spec);
    expect(final?.status).toBe("succeeded");
    const restarted = await eventually(
      () =>
        recording.lines.find(
          (line) => line.stream.kind === "service" && line.stream.serviceId === spec.id && line.text.includes("restart policy (on-failure) restarted it"),
        ),
      15_000,
      "restart reported",
    );
    expect(restarted.text).toContain("exit 137");
    expect(restarted.text).toMatch(/memory/);
    const state = engine.services().find((entry) => entry.serviceId === spec.id);
    expect(state?.restarts).toBeGreaterThanOrEqual(1);
    expect((await engine.sample!(spec.id)).memoryLimitBytes).toBe(16 * 1024 * 1024);
    const remove = task("DELETE", [spec]);
    await engine.execute(remove);
    expect(recording.final(remove.deploymentId)?.status).toBe("succeeded");
  });

  it("runs JOB services as one-off containers of their image: lifecycle runs with outputs and timeouts, cron runs until stopped", async () => {
    await git.createRepo("jobs", jobsFixture, { Dockerfile: JOBS_DOCKERFILE });
    const job = (name: string, config: Record<string, unknown>) =>
      jobServiceSpec.parse({ id: randomUUID(), name, kind: "JOB", config: { git: { url: git.url("jobs") }, ...config }, variables: [], domains: [] });

    const seed = job("seed", { command: "sh seed.sh", trigger: { type: "lifecycle", on: ["start"] } });
    const seeded = await deploy(seed);
    expect(seeded.final?.status, JSON.stringify(seeded.events)).toBe("succeeded");
    expect(seeded.events.map((event) => `${event.step}:${event.status}`)).toEqual([
      "deployment:started",
      ...["clone", "build", "run", "switch"].flatMap((step) => [`${step}:started`, `${step}:succeeded`]),
      "deployment:succeeded",
    ]);
    expect(seeded.events.find((event) => event.step === "run" && event.status === "succeeded")?.message).toMatch(
      /succeeded in [\d.]+s; outputs GREETING, SEED_ROWS/,
    );
    expect(
      recording.lines.some((line) => line.stream.kind === "deployment" && line.stream.deploymentId === seeded.id && line.text === "seeding on start"),
    ).toBe(true);
    expect(engine.services().find((entry) => entry.serviceId === seed.id)).toMatchObject({
      state: "idle",
      lastRun: { trigger: "start", outcome: "succeeded", exitCode: 0, attempts: 1 },
    });
    // A run's container is removed once it ended.
    expect(await containersOf(seed.id)).toEqual([]);

    const slow = job("slow", { command: "sh slow.sh", trigger: { type: "lifecycle", on: ["start"] }, timeoutSeconds: 1 });
    const timedOut = await deploy(slow);
    expect(timedOut.final).toMatchObject({ status: "failed", message: expect.stringMatching(/slow: run failed: run \S+ timed out in/) });
    expect(engine.services().some((entry) => entry.serviceId === slow.id)).toBe(false);
    expect(await containersOf(slow.id)).toEqual([]);

    const tick = job("tick", { command: "sh tick.sh", trigger: { type: "cron", schedule: "* * * * * *", timeZone: "Europe/Paris" } });
    expect((await deploy(tick)).final?.status).toBe("succeeded");
    const ticks = () => recording.lines.filter((line) => line.stream.kind === "service" && line.stream.serviceId === tick.id && line.text.startsWith("tick "));
    await eventually(() => ticks().length >= 2, 15_000, "two scheduled runs");
    expect(engine.services().find((entry) => entry.serviceId === tick.id)?.lastRun).toMatchObject({ trigger: "cron", outcome: "succeeded", exitCode: 0 });

    const stop = task("STOP", [tick]);
    const unscheduled = new Promise((resolve) => engine.events.once("job:unscheduled", resolve));
    await engine.execute(stop);
    expect(recording.final(stop.deploymentId)?.status).toBe("succeeded");
    // Stopped: its schedule ended, and none is left to run it.
    await expect(unscheduled).resolves.toEqual({ serviceId: tick.id });
    const stopped = engine.services().find((entry) => entry.serviceId === tick.id);
    expect(stopped).toMatchObject({ state: "stopped" });
    expect(stopped?.nextRunAt).toBeUndefined();

    for (const spec of [tick, seed]) {
      const remove = task("DELETE", [spec]);
      await engine.execute(remove);
      expect(recording.final(remove.deploymentId)?.status).toBe("succeeded");
      expect(engine.services().some((entry) => entry.serviceId === spec.id)).toBe(false);
      expect(await containersOf(spec.id)).toEqual([]);
    }
    expect(await service.docker.listImages({ filters: { reference: [`localhost/slipway/seed-${seed.id.slice(0, 8)}`] } })).toEqual([]);
  });

  it("runs every container unprivileged: no host mounts, no new privileges, capabilities dropped, the user chosen", async () => {
    /** What a process in the container has, as the kernel says (/proc/<pid>/status), and what it may do: asked with the podman CLI, behind the engine's back. */
    const inside = (containerId: string, script: string) => service.podman("exec", containerId, "sh", "-c", script);
    const status = (text: string, key: string) => new RegExp(`^${key}:\\s*(\\S+)$`, "m").exec(text)?.[1];
    const rootMask = ROOT_CAPABILITIES.reduce((mask, cap) => mask | (1n << BigInt(CAPABILITY_BITS[cap])), 0n)
      .toString(16)
      .padStart(16, "0");

    // The web release: an image built from the repository's Dockerfile, running as root.
    const [webContainer] = await containersOf(webId);
    const web = await service.docker.getContainer(webContainer!).inspect();
    expect(web.HostConfig.Privileged).toBe(false);
    expect(web.HostConfig.SecurityOpt).toContain("no-new-privileges");
    expect(web.HostConfig.PidsLimit).toBe(PIDS_LIMIT);
    expect(web.Mounts).toEqual([]);
    expect(web.HostConfig.Binds ?? []).toEqual([]);
    expect(web.HostConfig.Devices ?? []).toEqual([]);
    const webStatus = await inside(webContainer!, "cat /proc/1/status");
    expect(status(webStatus, "NoNewPrivs")).toBe("1");
    // Root keeps only what dropping to another user takes (CHOWN, SETUID, …): no NET_RAW, MKNOD, SYS_CHROOT, SYS_ADMIN.
    expect(status(webStatus, "CapEff")).toBe(rootMask);
    expect(status(webStatus, "CapBnd")).toBe(rootMask);

    // A CONTAINER told to run as nobody on a read-only root file system.
    const spec = busyboxService("locked", {
      command: ["sh", "-c", 'trap "exit 0" TERM; httpd -f -p "$PORT" -h /www & wait $!'],
      healthCheckTimeoutSeconds: 5,
      user: "65534:65534",
      readOnlyRootFilesystem: true,
    });
    const { final, events } = await deploy(spec);
    expect(final?.status, JSON.stringify(events)).toBe("succeeded");
    const [lockedContainer] = await containersOf(spec.id);
    const locked = await service.docker.getContainer(lockedContainer!).inspect();
    expect(locked.Config.User).toBe("65534:65534");
    expect(locked.HostConfig.ReadonlyRootfs).toBe(true);
    const lockedStatus = await inside(lockedContainer!, "id -u; cat /proc/1/status; touch /www/x 2>&1; touch /tmp/x && echo tmp-writable");
    expect(lockedStatus.split("\n")[0]).toBe("65534");
    expect(status(lockedStatus, "CapEff")).toBe("0000000000000000");
    expect(status(lockedStatus, "NoNewPrivs")).toBe("1");
    expect(lockedStatus).toContain("touch: /www/x: Read-only file system");
    expect(lockedStatus).toContain("tmp-writable");
    await engine.execute(task("DELETE", [spec]));

    // A JOB of an image whose USER is not root: its run container has no host mount, yet its outputs come back.
    await git.createRepo("unprivileged-job", jobsFixture, { Dockerfile: `${JOBS_DOCKERFILE}USER 65534\n` });
    const job = jobServiceSpec.parse({
      id: randomUUID(),
      name: "whoami",
      kind: "JOB",
      config: {
        git: { url: git.url("unprivileged-job") },
        command: `grep -E "^(NoNewPrivs|CapEff)" /proc/self/status; grep -c "${home}" /proc/self/mountinfo; echo "{\\"RUN_AS\\": \\"$(id -u)\\"}" > "$SLIPWAY_OUTPUT_FILE"`,
        trigger: { type: "lifecycle", on: ["start"] },
      },
      variables: [],
      domains: [],
    });
    const ran = await deploy(job);
    expect(ran.final?.status, JSON.stringify(ran.events)).toBe("succeeded");
    expect(ran.events.find((event) => event.step === "run" && event.status === "succeeded")?.message).toMatch(/outputs RUN_AS$/);
    const runLog = recording.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === ran.id).map((line) => line.text);
    expect(runLog).toEqual(expect.arrayContaining(["NoNewPrivs:\t1", "CapEff:\t0000000000000000", "0"]));
    await engine.execute(task("DELETE", [job]));
  });

  it("the engine process reports the Engine API version it connected to", async () => {
    const engineHome = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-docker-main-"));
    const closedPort = await testPort();
    const child = engineProcess({
      SLIPWAY_ENGINE_URL: `http://127.0.0.1:${closedPort}`,
      SLIPWAY_ENGINE_HOME: engineHome,
      SLIPWAY_ROUTER_PORT: String(await testPort()),
      SLIPWAY_DOCKER_HOST: service.url,
    });
    try {
      await eventually(() => child.output().includes("engine started"), 20_000, "engine started");
      expect(child.output()).toContain(`"apiVersion":"${service.apiVersion}"`);
      expect(child.output()).toContain('"runtime":"docker"');
    } finally {
      child.child.kill("SIGTERM");
      await child.exited;
      await killProcessesUnder(engineHome);
      await fs.rm(engineHome, { recursive: true, force: true });
    }
  });
});
