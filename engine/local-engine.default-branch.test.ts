import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";

/** Issue 14: a service created without a branch deploys the repository's default branch, whatever it is called. */
describe("local engine: a service without a branch", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const commits: Record<string, string> = {};

  beforeAll(async () => {
    git = await startGitServer();
    commits.legacy = await git.createRepo("legacy", fixture("node-app"), { "version.txt": "from master\n" }, "master");
    commits.trunk = await git.createRepo("trunk", fixture("node-app"), { "version.txt": "from trunk\n" }, "trunk");
    // A main branch beside the default one: the old default, which must not be what deploys.
    await git.pushDirectory("trunk", fixture("node-app"), { "version.txt": "from main\n" }, "main");
    env = await engineHome();
    engine = env.newEngine();
    await engine.start();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("deploys the remote's default branch (master, trunk) and says which in the clone event", async () => {
    for (const [repo, branch] of [
      ["legacy", "master"],
      ["trunk", "trunk"],
    ] as const) {
      const web = service({ name: repo, config: { git: { url: git.url(repo) }, healthCheckPath: "/health" } });
      expect(web.config.git.ref).toBeUndefined();
      const deploy = task("DEPLOY", [web]);
      await engine.execute(deploy);
      expect(env.final(deploy.deploymentId)).toMatchObject({ status: "succeeded" });
      const cloned = env.eventsOf(deploy.deploymentId).find((event) => event.step === "clone" && event.status === "succeeded");
      expect(cloned).toMatchObject({ commit: commits[repo], message: `branch ${branch}, the repository's default` });
      const answer = await env.get(`${repo}-test.localhost`);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ version: `from ${branch}` });
    }
  });

  it("names the branch it cloned when the service names one", async () => {
    const web = service({ name: "pinned", config: { git: { url: git.url("trunk"), ref: { branch: "main" } }, healthCheckPath: "/health" } });
    const deploy = task("DEPLOY", [web]);
    await engine.execute(deploy);
    const cloned = env.eventsOf(deploy.deploymentId).find((event) => event.step === "clone" && event.status === "succeeded");
    expect(cloned?.message).toBe("branch main");
    expect(JSON.parse((await env.get("pinned-test.localhost")).body)).toMatchObject({ version: "from main" });
  });
});
