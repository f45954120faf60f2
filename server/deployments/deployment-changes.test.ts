import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentEvent } from "../../engine/protocol/events";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { startWebServer } from "../web-server";
import { appendEngineEvents } from "./events";
import { getDeployment } from "./queries";

let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "changes");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
});
afterAll(() => web?.close());

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });
const [FIRST, SECOND] = ["a".repeat(40), "b".repeat(40)];
const SECRET_BEFORE = "sk-live-before-0001";
const SECRET_AFTER = "sk-live-after-0002";

/** What the engine reports for a deployment of `serviceId` that clones `commit` and succeeds (or fails). */
async function engineReports(deploymentId: string, serviceId: string, commit: string, outcome: "succeeded" | "failed" = "succeeded") {
  const row = await getDeployment({ ...services, actor: org.as("DEVELOPER") }, deploymentId);
  let seq = Date.now() * 1000;
  const at = new Date().toISOString();
  const event = (fields: Omit<DeploymentEvent, "seq" | "at">): DeploymentEvent => ({ seq: seq++, at, ...fields });
  await appendEngineEvents(services.db, services, row, [
    event({ serviceId: null, step: "deployment", status: "started" }),
    event({ serviceId, step: "clone", status: "succeeded", commit, commitInfo: { subject: "a change", author: "Ada" } }),
    event({ serviceId: null, step: "deployment", status: outcome }),
  ]);
}

describe("what a deployment changed", () => {
  it("compares with the last successful deployment: commit range with its compare link, configuration fields, variable keys and never a value", async () => {
    const project = await api().projects.create({ name: "shop" });
    const environment = await api().environments.create({ projectId: project.id, name: "staging" });
    const git = { url: "https://github.com/acme/shop.git", ref: { branch: "main" } };
    const web_ = await api().services.create({ environmentId: environment.id, name: "web", config: { git, startCommand: "node server.js" } });
    await api().variables.set({ scope: "SERVICE", targetId: web_.id, key: "GREETING", value: "hello" });
    await api().variables.set({ scope: "SERVICE", targetId: web_.id, key: "API_KEY", value: SECRET_BEFORE, secret: true });
    await api().variables.set({ scope: "SERVICE", targetId: web_.id, key: "GONE", value: "soon" });

    const first = (await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" })).deployment;
    await engineReports(first.id, web_.id, FIRST);
    const [firstChanges] = await api().deployments.changes({ deploymentId: first.id });
    expect(firstChanges).toMatchObject({ name: "web", previousDeploymentId: null, commits: { from: null, to: FIRST, compareUrl: null } });

    // A failed deployment in between is not what the next one is compared with.
    await api().variables.set({ scope: "SERVICE", targetId: web_.id, key: "GREETING", value: "bonjour" });
    const failed = (await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" })).deployment;
    await engineReports(failed.id, web_.id, SECOND, "failed");

    await api().variables.set({ scope: "SERVICE", targetId: web_.id, key: "API_KEY", value: SECRET_AFTER, secret: true });
    await api().variables.set({ scope: "SERVICE", targetId: web_.id, key: "ADDED", value: "new" });
    await api().variables.unset({ scope: "SERVICE", targetId: web_.id, key: "GONE" });
    await api().services.update({ serviceId: web_.id, config: { startCommand: "node main.js" } });
    const second = (await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" })).deployment;
    await engineReports(second.id, web_.id, SECOND);

    const changes = await api().deployments.changes({ deploymentId: second.id });
    expect(changes).toEqual([
      {
        serviceId: web_.id,
        name: "web",
        kind: "APPLICATION",
        previousDeploymentId: first.id,
        commits: { from: FIRST, to: SECOND, compareUrl: `https://github.com/acme/shop/compare/${FIRST}...${SECOND}` },
        config: [{ path: "startCommand", change: "changed", secret: false, from: "node server.js", to: "node main.js" }],
        variables: [
          { key: "ADDED", change: "added", secret: false },
          { key: "API_KEY", change: "changed", secret: true },
          { key: "GONE", change: "removed", secret: false },
          { key: "GREETING", change: "changed", secret: false },
        ],
      },
    ]);

    // The same through REST with an API token, and no value anywhere in the answer.
    const token = await org.apiToken("VIEWER");
    const response = await fetch(`${web.url}/api/v1/deployments/${second.id}/changes`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual(changes);
    for (const value of [SECRET_BEFORE, SECRET_AFTER, "hello", "bonjour", "soon"]) expect(text).not.toContain(value);
  });

  it("has nothing to compare for a stop, and hides another organization's deployment", async () => {
    const project = await api().projects.create({ name: "stopped" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    await api().services.create({ environmentId: environment.id, name: "web", config: { git: { url: "https://github.com/acme/stopped.git" } } });
    const stop = (await api().deployments.create({ environmentId: environment.id, action: "STOP" })).deployment;
    expect(await api().deployments.changes({ deploymentId: stop.id })).toEqual([]);

    const other = await seedOrganization(services, "changes-other");
    await expect(createCaller({ services, actor: other.as("OWNER") }).deployments.changes({ deploymentId: stop.id })).rejects.toThrow(/not found/i);
  });
});
