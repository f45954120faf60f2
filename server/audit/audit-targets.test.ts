import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { services as servicesTable } from "../db/schema";
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
});
