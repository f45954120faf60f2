import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import getPort from "get-port";
import { createCaller } from "../server/api/root";
import { fixture } from "../test/engine-harness";
import type { GitServer } from "../test/git-server";
import { killProcessesUnder } from "../test/process-cleanup";
import { spawnEngine } from "../test/support/engine-process";
import type { startBenchControlPlane } from "./control-plane";

type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;

export type StagesRun = { concurrency: number; totalMs: number; firstLiveMs: number };

/**
 * Clone-and-deploy of an environment of eight small Node apps in two stages of four (issue 16):
 * from the clone's API call to DEPLOYED, and to the first app going live, with an engine that
 * deploys one service at a time (SLIPWAY_ENGINE_CONCURRENCY=1, the baseline: how every
 * environment deployed before) beside one that deploys as many as the host has cores.
 */
export async function measureStages(plane: ControlPlane, git: GitServer, parallel = os.availableParallelism()) {
  const api = createCaller({ services: plane.services, actor: plane.org.as("DEVELOPER") });
  await git.createRepo("stages-app", fixture("node-app"));
  const project = await api.projects.create({ name: "stages-bench" });
  const source = await api.environments.create({ projectId: project.id, name: "source" });
  for (const stage of ["backend", "frontends"]) await api.stages.add({ environmentId: source.id, name: stage });
  for (let i = 0; i < 8; i++) {
    const service = await api.services.create({
      environmentId: source.id,
      name: `app-${i}`,
      config: { git: { url: git.url("stages-app"), ref: { branch: "main" } }, healthCheckPath: "/health" },
    });
    await api.stages.setService({ serviceId: service.id, stage: i < 4 ? "backend" : "frontends" });
  }

  const runs: StagesRun[] = [];
  for (const concurrency of [1, parallel]) {
    const home = path.join(plane.dir, `stages-engine-${concurrency}`);
    const engine = spawnEngine({
      url: plane.webUrl,
      token: plane.org.engineToken,
      home,
      routerPort: await getPort(),
      env: { SLIPWAY_ENGINE_CONCURRENCY: String(concurrency) },
    });
    try {
      // The clock starts once the engine is up, as it would be in use: its boot is not what is measured.
      while (!engine.output().includes("connected to the control plane")) {
        if (engine.child.exitCode !== null) throw new Error(`the engine exited: ${engine.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const started = Date.now();
      const { deployment } = await api.environments.clone({ environmentId: source.id, name: `copy-${concurrency}`, deploy: true });
      if (!deployment) throw new Error("the clone was not deployed");
      for (;;) {
        const current = await api.deployments.get({ deploymentId: deployment.id });
        if (current.status === "DEPLOYED") break;
        if (current.finishedAt) throw new Error(`bench deploy ended ${current.status}: ${current.statusMessage}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const totalMs = Date.now() - started;
      const events = await api.deployments.events({ deploymentId: deployment.id });
      const firstLive = Math.min(...events.filter((event) => event.step === "switch" && event.status === "succeeded").map((event) => Date.parse(event.at)));
      runs.push({ concurrency, totalMs, firstLiveMs: firstLive - started });
    } finally {
      await engine.stop("SIGTERM");
      await killProcessesUnder(home);
      await fs.rm(home, { recursive: true, force: true });
    }
  }
  const [sequential, side] = runs as [StagesRun, StagesRun];
  return { sequential, parallel: side, ratio: sequential.totalMs / side.totalMs };
}
