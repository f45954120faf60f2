import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { createTestDatabase, withDatabaseDown, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { startWebServer } from "../web-server";

let web: Awaited<ReturnType<typeof startWebServer>>;
let org: SeededOrganization;
let token: string;
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  const services = testServices(database.db);
  org = await seedOrganization(services, "rest");
  token = await org.apiToken("DEVELOPER");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
});
afterAll(() => web?.close());

const call = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(`${web.url}/api/v1${path}`, {
    ...init,
    headers: { "content-type": "application/json", authorization: `Bearer ${init.token ?? token}`, "x-slipway-origin": "CLI", ...init.headers },
  });

describe("REST under /api/v1", () => {
  it("serves the same procedures with an API token, and records the CLI as origin", async () => {
    const created = await call("/projects", { method: "POST", body: JSON.stringify({ name: "rest-demo" }) });
    expect(created.status, await created.clone().text()).toBe(200);
    const project = (await created.json()) as { id: string };
    const listed = (await (await call("/projects")).json()) as { name: string }[];
    expect(listed.map((p) => p.name)).toEqual(["rest-demo"]);
    const resolved = await (await call(`/resolve?path=rest-demo`)).json();
    expect(resolved).toEqual({ projectId: project.id, environmentId: null, serviceId: null });
    const owner = await org.apiToken("OWNER");
    const audit = (await (await call("/audit", { token: owner })).json()) as { action: string; origin: string; actor: string }[];
    expect(audit[0]).toMatchObject({ action: "project.create", origin: "CLI", actor: "token:test-DEVELOPER" });
  });

  it("answers with HTTP status codes a script can act on", async () => {
    expect((await call("/projects", { token: "swp_wrong" })).status).toBe(401);
    expect((await fetch(`${web.url}/api/v1/projects`)).status).toBe(401);
    expect((await call("/audit")).status).toBe(403);
    expect((await call("/environments/00000000-0000-4000-8000-000000000000")).status).toBe(404);
    const invalid = await call("/projects", { method: "POST", body: JSON.stringify({ name: "UPPER" }) });
    expect(invalid.status).toBe(400);
    expect(await invalid.text()).toMatch(/lowercase/);
    expect((await call("/projects", { method: "POST", body: JSON.stringify({ name: "rest-demo" }) })).status).toBe(409);
    expect((await call("/projects", { method: "POST", body: "{not json" })).status).toBe(400);
  });

  it("publishes an OpenAPI document generated from the procedures", async () => {
    const document = (await (await fetch(`${web.url}/api/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, object> };
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(["/projects", "/deployments", "/deployments/{deploymentId}/cancel", "/logs"]));
    expect((await fetch(`${web.url}/api/health`)).status).toBe(200);
  });

  it("answers its health check 503 while the database is down, and 200 once it is back", async () => {
    const health = async () => {
      const response = await fetch(`${web.url}/api/health`);
      return { status: response.status, body: await response.json() };
    };
    expect(await health()).toEqual({ status: 200, body: { ok: true, database: "up" } });
    await withDatabaseDown(database, async () => expect(await health()).toEqual({ status: 503, body: { ok: false, database: "down" } }));
    expect(await health()).toEqual({ status: 200, body: { ok: true, database: "up" } });
  });
});
