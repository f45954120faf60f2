import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, type ReportedEvent, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import type { ApplicationServiceSpec } from "./protocol";

/** Issue 16, part 2: services of a stage deploy side by side; a failing one fails its stage, not its neighbours. */
describe("local engine: stages and parallel services", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;

  const app = (name: string, buildCommand?: string): ApplicationServiceSpec =>
    service({ name, config: { git: { url: git.url("app") }, healthCheckPath: "/health", ...(buildCommand ? { buildCommand } : {}) } });
  /** Where in the recorded events a service's step reached this status. */
  const indexOf = (events: ReportedEvent[], spec: ApplicationServiceSpec, step: string, status: string) =>
    events.findIndex((event) => event.serviceId === spec.id && event.step === step && event.status === status);
  /** Whether the two services' builds ran at the same time: each started before the other ended. */
  const buildsOverlap = (events: ReportedEvent[], a: ApplicationServiceSpec, b: ApplicationServiceSpec) =>
    indexOf(events, a, "build", "started") < indexOf(events, b, "build", "succeeded") &&
    indexOf(events, b, "build", "started") < indexOf(events, a, "build", "succeeded");

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("app", fixture("node-app"));
    env = await engineHome();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  // Two deployments of two real builds each: far longer than a unit test on a busy host.
  it("builds the services of a stage at the same time, and one at a time with a concurrency of 1", { timeout: 120_000 }, async () => {
    // Builds that take a second each, so that running side by side shows in the order of their events.
    const [a, b] = [app("slow-a", "sleep 1"), app("slow-b", "sleep 1")];
    const parallel = env.newEngine(undefined, { concurrency: 2 });
    const side = task("DEPLOY", [a, b]);
    await parallel.execute(side);
    expect(env.final(side.deploymentId)).toMatchObject({ status: "succeeded", message: "deployed 2 services" });
    expect(buildsOverlap(env.eventsOf(side.deploymentId), a, b)).toBe(true);
    await parallel.shutdown();

    const serial = env.newEngine(undefined, { concurrency: 1 });
    const oneByOne = task("DEPLOY", [a, b]);
    await serial.execute(oneByOne);
    expect(env.final(oneByOne.deploymentId)?.status).toBe("succeeded");
    expect(buildsOverlap(env.eventsOf(oneByOne.deploymentId), a, b)).toBe(false);
    await serial.shutdown();
  });

  it("lets the rest of a stage go live when one of its services fails to build, and does not start the next stage", { timeout: 120_000 }, async () => {
    const engine = env.newEngine(undefined, { concurrency: 3 });
    const [web, api] = [app("web"), app("api")];
    const broken = app("broken", "echo the build broke on purpose >&2; exit 3");
    const later = app("later");
    const deploy = task("DEPLOY", [api, broken, web, later], undefined, undefined, [
      { name: "apps", serviceIds: [api.id, broken.id, web.id] },
      { name: "frontends", serviceIds: [later.id] },
    ]);
    await engine.execute(deploy);
    const events = env.eventsOf(deploy.deploymentId);

    expect(events.find((event) => event.serviceId === broken.id && event.status === "failed")).toMatchObject({ step: "build" });
    for (const live of [web, api]) {
      expect(indexOf(events, live, "switch", "succeeded")).toBeGreaterThan(-1);
      const response = await env.get(`${live.name}-test.localhost`);
      expect(response.status).toBe(200);
    }
    // The next stage never started, and says why.
    expect(events.filter((event) => event.serviceId === later.id)).toEqual([
      expect.objectContaining({ step: "clone", status: "skipped", message: "not started: stage apps failed (broken)" }),
    ]);
    expect((await env.get("later-test.localhost")).status).not.toBe(200);
    const final = env.final(deploy.deploymentId);
    expect(final?.status).toBe("failed");
    expect(final?.message).toMatch(/^1 of 4 services failed: broken; 2 are live, 1 not started; broken: build failed/);
    await engine.shutdown();
  });
});
