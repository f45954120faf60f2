import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";

/** An engine on a host that cannot sandbox fails closed: it runs apps only for a cluster an ADMIN marked trusted. */
describe("local engine on a host that cannot sandbox", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("app", fixture("node-app"));
    env = await engineHome({
      drainTimeoutMs: 500,
      stopGraceMs: 2_000,
      sandbox: Promise.resolve({ kind: "none", reason: "bubblewrap (bwrap) is not installed" }),
    });
    engine = env.newEngine();
    await engine.start();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("refuses to build an app, saying why and what the way out is", async () => {
    const app = service({ name: "app", config: { git: { url: git.url("app") } } });
    const deploy = task("DEPLOY", [app]);
    await engine.execute(deploy);
    const final = env.final(deploy.deploymentId);
    expect(final?.status).toBe("failed");
    expect(final?.message).toMatch(/cannot sandbox apps \(bubblewrap \(bwrap\) is not installed\).*an ADMIN may mark the cluster trusted/);
    expect((await env.get("app-test.localhost")).status).toBe(503);
  });

  it("runs it unsandboxed on a trusted cluster, and says so in the build log", async () => {
    const app = service({ name: "app", config: { git: { url: git.url("app") } } });
    const deploy = { ...task("DEPLOY", [app]), trusted: true };
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    expect(env.lines.some((line) => line.text === "Sandbox: none (trusted cluster)")).toBe(true);
    expect((await env.get("app-test.localhost")).status).toBe(200);
  });
});
