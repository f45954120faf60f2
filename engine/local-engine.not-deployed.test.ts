import { randomUUID } from "node:crypto";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";

/**
 * A service whose first deployment failed exists: its hostname answers 503 "not deployed yet",
 * as a stopped one answers 503, not the router's 404 for a host no service has. The engine
 * learns the service from that deployment and keeps it across its restarts.
 */
describe("local engine: the hostname of a service that never went live", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  let app: string;

  beforeAll(async () => {
    git = await startGitServer();
    app = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-not-deployed-"));
    await fsp.writeFile(path.join(app, "Procfile"), "web: python3 -m http.server $PORT\n");
    await fsp.writeFile(path.join(app, "index.html"), "flask is up\n");
    await git.createRepo("flask", app);
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 });
    engine = env.newEngine();
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await fsp.rm(app, { recursive: true, force: true });
  });

  const flaskId = randomUUID();
  const spec = (buildCommand?: string) =>
    service({ id: flaskId, name: "flask", config: { git: { url: git.url("flask") }, ...(buildCommand ? { buildCommand } : {}) } });

  async function deploy(buildCommand: string | undefined, status: "succeeded" | "failed") {
    const deployment = task("DEPLOY", [spec(buildCommand)]);
    await engine.execute(deployment);
    expect(env.final(deployment.deploymentId)).toMatchObject({ status });
  }

  it("answers 503 not deployed yet after a failed first deployment, across an engine restart, until a deployment succeeds; 404 once deleted", async () => {
    await deploy("exit 3", "failed");
    const failed = await env.get("flask-test.localhost");
    expect(failed.status).toBe(503);
    expect(failed.body).toContain("The service flask has not been deployed successfully yet");

    // The next engine knows it too: the table it hands the router (on another service's deploy) keeps the hostname.
    await engine.shutdown();
    engine = env.newEngine();
    await engine.start();
    const other = service({ name: "other", config: { git: { url: git.url("flask") } } });
    const otherDeployment = task("DEPLOY", [other]);
    await engine.execute(otherDeployment);
    expect(env.final(otherDeployment.deploymentId)).toMatchObject({ status: "succeeded" });
    expect((await env.get("flask-test.localhost")).status).toBe(503);

    await deploy(undefined, "succeeded");
    const live = await env.get("flask-test.localhost");
    expect(live.status).toBe(200);
    expect(live.body).toBe("flask is up\n");

    await engine.execute(task("DELETE", [spec()]));
    const deleted = await env.get("flask-test.localhost");
    expect(deleted.status).toBe(404);
    expect(deleted.body).toContain("No service on this Slipway has the host flask-test.localhost");
  }, 180_000);
});
