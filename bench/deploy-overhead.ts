import { execFile, spawn } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import getPort from "get-port";
import { createCaller } from "../server/api/root";
import { fixture } from "../test/engine-harness";
import type { GitServer } from "../test/git-server";
import { killProcessesUnder } from "../test/process-cleanup";
import { spawnEngine } from "../test/support/engine-process";
import { percentile } from "./stats";
import type { startBenchControlPlane } from "./control-plane";

const run = promisify(execFile);
type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;

async function waitForHealth(port: number) {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/health", agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The same work without Slipway: clone at the branch, install, start as the build plan does (`npm start`), wait for health. */
async function directDeploy(url: string, dir: string): Promise<number> {
  const started = performance.now();
  await run("git", ["clone", "--depth", "1", "--branch", "main", url, dir]);
  await run("npm", ["install", "--no-audit", "--no-fund"], { cwd: dir });
  const port = await getPort();
  const child = spawn("npm", ["start"], { cwd: dir, env: { ...process.env, PORT: String(port) }, stdio: "ignore", detached: true });
  await waitForHealth(port);
  const elapsed = performance.now() - started;
  process.kill(-child.pid!, "SIGKILL");
  return elapsed;
}

/**
 * The platform's overhead on a deploy: the time from the API call to DEPLOYED, minus the time
 * the same clone, install and start take when run directly (p50 of several runs each).
 */
export async function measureDeployOverhead(plane: ControlPlane, git: GitServer, runs: number) {
  const home = path.join(plane.dir, "engine");
  const engine = spawnEngine({ url: plane.webUrl, token: plane.org.engineToken, home, routerPort: await getPort() });
  const api = createCaller({ services: plane.services, actor: plane.org.as("DEVELOPER") });
  await git.createRepo("overhead", fixture("node-app"), { "version.txt": "0\n" });
  const project = await api.projects.create({ name: "overhead" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  await api.services.create({
    environmentId: environment.id,
    name: "web",
    config: { git: { url: git.url("overhead"), ref: { branch: "main" } }, healthCheckPath: "/health" },
  });

  const platform: number[] = [];
  const direct: number[] = [];
  try {
    for (let i = 1; i <= runs; i++) {
      await git.pushDirectory("overhead", fixture("node-app"), { "version.txt": `${i}\n` });
      direct.push(await directDeploy(git.url("overhead"), path.join(plane.dir, `direct-${i}`)));
      const started = performance.now();
      const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
      for (;;) {
        const current = await api.deployments.get({ deploymentId: deployment.id });
        if (current.status === "DEPLOYED") break;
        if (current.finishedAt) throw new Error(`bench deploy ended ${current.status}: ${current.statusMessage}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      platform.push(performance.now() - started);
    }
  } finally {
    await engine.stop("SIGTERM");
    await killProcessesUnder(home);
    await fs.rm(home, { recursive: true, force: true });
  }
  const p50Platform = percentile(platform, 50);
  const p50Direct = percentile(direct, 50);
  return { runs, p50Platform, p50Direct, overhead: p50Platform - p50Direct, ratio: p50Platform / p50Direct };
}
