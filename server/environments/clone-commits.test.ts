import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import type { DeploymentEvent } from "../../engine/protocol/events";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments } from "../db/schema";
import { recordEngineEvents } from "../engines/engine-session";

/**
 * A clone deploys what its source runs (issue F8 of the newcomer walkthrough): each service at
 * the commit of its live release, which the source's recorded deployment events tell, not its
 * branch's latest commit.
 */
let services: Services;
let org: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "clone-commits");
});

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });
const commit = (digit: string) => digit.repeat(40);
let seq = 0;
const event = (
  serviceId: string | null,
  step: DeploymentEvent["step"],
  status: DeploymentEvent["status"],
  extra: Partial<DeploymentEvent> = {},
): DeploymentEvent => ({
  seq: ++seq,
  serviceId,
  step,
  status,
  at: new Date().toISOString(),
  ...extra,
});

/** Plays the engine through a deployment of `outcomes`: each service cloned at its commit, then live or failed in its build. */
async function deploy(environmentId: string, outcomes: { serviceId: string; commit: string; live: boolean }[]) {
  const { deployment } = await api().deployments.create({ environmentId, action: "DEPLOY", serviceIds: outcomes.map((o) => o.serviceId) });
  const steps = outcomes.flatMap(({ serviceId, commit, live }) => [
    event(serviceId, "clone", "succeeded", { commit }),
    ...(live ? [event(serviceId, "build", "succeeded"), event(serviceId, "switch", "succeeded")] : [event(serviceId, "build", "failed")]),
  ]);
  const end = outcomes.every((o) => o.live) ? event(null, "deployment", "succeeded") : event(null, "deployment", "failed");
  await recordEngineEvents(services, org.clusterId, deployment.id, [event(null, "deployment", "started"), ...steps, end]);
  return deployment;
}

async function pinnedRefs(deploymentId: string) {
  const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deploymentId));
  return Object.fromEntries(row!.snapshot.services.flatMap((s) => (s.kind === "APPLICATION" ? [[s.name, s.config.git.ref]] : [])));
}

describe("cloning with a deployment", () => {
  it("deploys each service at the commit its source runs, by default and when asked for 'live'", async () => {
    const project = await api().projects.create({ name: "shop" });
    const dev = await api().environments.create({ projectId: project.id, name: "dev" });
    const git = { url: "https://example.test/shop/web.git", ref: { branch: "main" } };
    const vite = await api().services.create({ environmentId: dev.id, name: "vite", config: { git } });
    const express = await api().services.create({ environmentId: dev.id, name: "express", config: { git } });
    await api().services.create({ environmentId: dev.id, name: "fresh", config: { git } });
    await api().services.create({ environmentId: dev.id, name: "cache", kind: "DATABASE", config: { engine: "redis" } });

    await deploy(dev.id, [
      { serviceId: vite.id, commit: commit("1"), live: true },
      { serviceId: express.id, commit: commit("2"), live: true },
    ]);
    // express's newer commit failed to build: it still runs the older one; vite went live at a newer one.
    await deploy(dev.id, [
      { serviceId: vite.id, commit: commit("3"), live: true },
      { serviceId: express.id, commit: commit("4"), live: false },
    ]);

    expect(new Map((await api().environments.liveCommits({ environmentId: dev.id })).map((c) => [c.serviceId, c.commit]))).toEqual(
      new Map([
        [vite.id, commit("3")],
        [express.id, commit("2")],
      ]),
    );

    const copy = await api().environments.clone({ environmentId: dev.id, name: "feature-x", deploy: true });
    // "fresh" never went live in dev: it deploys its branch's latest, and the answer says so.
    expect(copy.commits).toEqual([
      { service: "vite", commit: commit("3") },
      { service: "express", commit: commit("2") },
      { service: "fresh", commit: null },
    ]);
    expect(await pinnedRefs(copy.deployment!.id)).toEqual({ vite: { commit: commit("3") }, express: { commit: commit("2") }, fresh: { branch: "main" } });
    const asked = await api().environments.clone({ environmentId: dev.id, name: "feature-y", deploy: true, commits: "live" });
    expect(await pinnedRefs(asked.deployment!.id)).toMatchObject({ vite: { commit: commit("3") }, express: { commit: commit("2") } });
    const [audit] = await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ action: "environment.clone" });
    expect(audit!.changes).toMatchObject({ commits: "live" });
  });

  it("deploys each branch's latest commit when asked, or when the copy follows another branch", async () => {
    const project = await api().projects.create({ name: "blog" });
    const dev = await api().environments.create({ projectId: project.id, name: "dev" });
    const web = await api().services.create({
      environmentId: dev.id,
      name: "web",
      config: { git: { url: "https://example.test/blog.git", ref: { branch: "main" } } },
    });
    await deploy(dev.id, [{ serviceId: web.id, commit: commit("5"), live: true }]);

    const latest = await api().environments.clone({ environmentId: dev.id, name: "latest", deploy: true, commits: "latest" });
    expect(latest.commits).toEqual([{ service: "web", commit: null }]);
    expect(await pinnedRefs(latest.deployment!.id)).toEqual({ web: { branch: "main" } });

    const review = await api().environments.clone({ environmentId: dev.id, name: "review", deploy: true, branch: "feature/login" });
    expect(await pinnedRefs(review.deployment!.id)).toEqual({ web: { branch: "feature/login" } });

    await expect(
      api().environments.clone({ environmentId: dev.id, name: "nope", deploy: true, branch: "feature/login", commits: "live" }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining(`follows branch "feature/login" deploys that branch's latest commits, not the ones its source runs`),
    });
    // Without a deployment nothing is pinned: the copy's services follow their branches.
    expect((await api().environments.clone({ environmentId: dev.id, name: "later", deploy: false })).commits).toEqual([]);
  });
});
