import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments, services as servicesTable } from "../db/schema";
import { recordAudit } from "./record-audit";

let services: Services;
let acme: SeededOrganization;
let globex: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  acme = await seedOrganization(services, "acme-audit");
  globex = await seedOrganization(services, "globex-audit");
});

const owner = (org: SeededOrganization) => createCaller({ services, actor: org.as("OWNER") });
const application = { git: { url: "https://example.test/app.git", ref: { branch: "main" } } };

describe("audit targets by name (issue 15, item 8)", () => {
  it("names live targets with their path and links them to their page", async () => {
    const api = owner(acme);
    const project = await api.projects.create({ name: "shop" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    const service = await api.services.create({ environmentId: environment.id, name: "web", config: application });
    await api.variables.set({ scope: "SERVICE", targetId: service.id, key: "GREETING", value: "hello" });
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    await api.organization.createToken({ name: "ci", role: "DEVELOPER" });

    const audit = await api.organization.audit({ limit: 50 });
    const event = (action: string) => audit.find((e) => e.action === action)!;
    expect(event("project.create").target).toEqual({ label: "shop", href: `/projects/${project.id}` });
    expect(event("environment.create").target).toEqual({ label: "shop/dev", href: `/environments/${environment.id}` });
    expect(event("service.create").target).toEqual({ label: "shop/dev/web", href: `/services/${service.id}` });
    expect(event("variable.create").target).toEqual({ label: "GREETING on shop/dev/web", href: `/services/${service.id}/variables` });
    // A deploy is recorded on its environment; the deployment it created is linked beside it.
    expect(event("deployment.deploy")).toMatchObject({
      target: { label: "shop/dev", href: `/environments/${environment.id}` },
      deployment: { label: `deployment ${deployment.id.slice(0, 8)}`, href: `/deployments/${deployment.id}` },
    });
    expect(event("api_token.create").target).toEqual({ label: "ci", href: "/settings/tokens" });
    expect(event("project.create").deployment).toBeNull();
  });

  it("keeps the recorded name of a target deleted since, without a dead link", async () => {
    const api = owner(acme);
    const project = await api.projects.create({ name: "gone" });
    const environment = await api.environments.create({ projectId: project.id, name: "tmp" });
    const service = await api.services.create({ environmentId: environment.id, name: "worker", config: application });
    await api.services.update({ serviceId: service.id, config: { ...application, port: 8080 } });
    // What the DELETE deployment's last step does: the row goes.
    await services.db.delete(servicesTable).where(eq(servicesTable.id, service.id));
    await api.projects.create({ name: "empty" }).then((empty) => api.projects.delete({ projectId: empty.id }));

    const audit = await api.organization.audit({ limit: 50 });
    // service.update recorded no name: the one its creation recorded is used.
    expect(audit.find((e) => e.action === "service.update" && e.targetId === service.id)!.target).toEqual({ label: "worker", href: null });
    expect(audit.filter((e) => e.action.startsWith("project.") && e.target?.label === "empty").map((e) => e.target)).toEqual([
      { label: "empty", href: null },
      { label: "empty", href: null },
    ]);
  });

  it("falls back to the id when nothing named the target, and never resolves another organization's rows", async () => {
    const theirs = await owner(globex).projects.create({ name: "secret-project" });
    await services.db.transaction((tx) => recordAudit(tx, acme.as("OWNER"), { action: "project.touch", targetType: "project", targetId: theirs.id }));
    const audit = await owner(acme).organization.audit({ limit: 5, action: "project.touch" });
    expect(audit[0]!.target).toEqual({ label: theirs.id, href: null });
  });

  it("names the services a deployment acted on, in its row and its details, deleted ones included (h4 F11)", async () => {
    const api = owner(acme);
    const project = await api.projects.create({ name: "demo" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    const html = await api.services.create({ environmentId: environment.id, name: "html", config: application });
    const vite = await api.services.create({ environmentId: environment.id, name: "vite", config: application });
    const whole = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const one = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY", serviceIds: [vite.id] });
    const removal = await api.deployments.create({ environmentId: environment.id, action: "DELETE", serviceIds: [html.id] });
    // What the DELETE deployment's end does: the row goes.
    await services.db.delete(servicesTable).where(eq(servicesTable.id, html.id));
    // A copy a clone made has no creation event of its own: its name comes from the deployment that acted on it.
    const { environment: copy } = await api.environments.clone({ environmentId: environment.id, name: "copy" });
    const copiedVite = (await api.services.list({ environmentId: copy.id })).find((s) => s.name === "vite")!;
    const copyRemoval = await api.deployments.create({ environmentId: copy.id, action: "DELETE", serviceIds: [copiedVite.id] });
    await services.db.delete(servicesTable).where(eq(servicesTable.id, copiedVite.id));

    const audit = await api.organization.audit({ limit: 50 });
    const of = (deploymentId: string) => audit.find((e) => e.changes?.deploymentId === deploymentId)!;
    expect(of(whole.deployment.id)).toMatchObject({ target: { label: "demo/dev", href: `/environments/${environment.id}` }, services: null });
    expect(of(one.deployment.id)).toMatchObject({
      target: { label: "vite in demo/dev", href: `/environments/${environment.id}` },
      services: [{ label: "demo/dev/vite", href: `/services/${vite.id}` }],
    });
    expect(of(removal.deployment.id)).toMatchObject({
      action: "deployment.delete",
      target: { label: "html in demo/dev", href: `/environments/${environment.id}` },
      services: [{ label: "html", href: null }],
    });
    expect(of(copyRemoval.deployment.id)).toMatchObject({ target: { label: "vite in demo/copy" }, services: [{ label: "vite", href: null }] });
    expect(await services.db.select().from(deployments).where(eq(deployments.id, copyRemoval.deployment.id))).toHaveLength(1);
  });

  it("counts the services beyond the first three in a row's label", async () => {
    const api = owner(acme);
    const project = await api.projects.create({ name: "many" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    const created = [];
    for (const name of ["a", "b", "c", "d", "e"]) created.push(await api.services.create({ environmentId: environment.id, name, config: application }));
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "STOP", serviceIds: created.map((s) => s.id) });
    const [event] = await api.organization.audit({ limit: 1, action: "deployment.stop" });
    expect(event).toMatchObject({ changes: { deploymentId: deployment.id }, target: { label: "a, b, c and 2 more in many/dev" } });
    expect(event!.services!.map((s) => s.label)).toEqual(["many/dev/a", "many/dev/b", "many/dev/c", "many/dev/d", "many/dev/e"]);
  });
});
