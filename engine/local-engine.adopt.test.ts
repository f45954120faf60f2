import fs from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { type GitServer, startGitServer } from "../test/git-server";
import { processStartTime } from "./runtime/local/processes";
import { layout } from "./runtime/local/layout";

/**
 * An engine that starts takes up what the previous one left (states, processes, logs). One
 * service whose state it cannot read (a write cut short by a power loss, a newer engine's
 * format) must not keep it from taking up the others, nor stop what that service runs.
 */
describe("local engine: taking up services after a restart", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  const app = (id: string, name: string) => service({ id, name, config: { git: { url: git.url("app") } } });
  const broken = () => app("3c1f6a2e-7b4d-4e9a-8c5f-0a1b2c3d4e5f", "broken");
  const healthy = () => app("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", "healthy");

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("app", fixture("node-app"));
    env = await engineHome();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("takes up every service it can read, and leaves one it cannot running as it is", async () => {
    const first = env.newEngine();
    await first.start();
    const deploy = task("DEPLOY", [broken(), healthy()]);
    await first.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    const brokenPid = appPid(first.services().find((state) => state.serviceId === broken().id)?.port);
    const brokenStart = processStartTime(brokenPid);
    await first.shutdown();
    // Cut short as a power loss can leave a file renamed into place before its data reached the disk.
    await fs.writeFile(layout(env.home).stateFile(broken().id), '{"serviceId": "3c1f');

    const second = env.newEngine();
    await second.start();
    expect(second.services().map((state) => [state.serviceId, state.state])).toEqual([[healthy().id, "running"]]);
    expect((await env.get("healthy-test.localhost")).status).toBe(200);
    expect(processStartTime(brokenPid)).toBe(brokenStart);
    expect(env.lines.map((line) => line.text)).toContainEqual(
      expect.stringMatching(/^\[slipway\] the engine could not take up this service's state \(.*state\.json is not what this engine can read/),
    );

    // Deploying it again takes it up.
    const again = task("DEPLOY", [broken()]);
    await second.execute(again);
    expect(env.final(again.deploymentId)?.status).toBe("succeeded");
    expect((await env.get("broken-test.localhost")).status).toBe(200);
  });
});
