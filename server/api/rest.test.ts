import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { createTestDatabase, withDatabaseDown, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { startWebServer } from "../web-server";

let web: Awaited<ReturnType<typeof startWebServer>>;
let org: SeededOrganization;
let other: SeededOrganization;
let token: string;
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  const services = testServices(database.db);
  org = await seedOrganization(services, "rest");
  other = await seedOrganization(services, "rest-other");
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

/** Issue 13: bad input gets a 4xx, never a 500 or a wrong accept, and a refused change loses nothing. */
describe("REST with bad input", () => {
  let owner: string;
  let project: { id: string };
  let environment: { id: string; protected: boolean; schedule: unknown; expiresAt: string | null };
  let service: { id: string };

  beforeAll(async () => {
    owner = await org.apiToken("OWNER");
    project = (await (await call("/projects", { method: "POST", body: JSON.stringify({ name: "bad-input" }) })).json()) as typeof project;
    environment = (await (
      await call("/environments", { method: "POST", body: JSON.stringify({ projectId: project.id, name: "dev" }) })
    ).json()) as typeof environment;
    const application = { git: { url: "https://example.test/app.git", ref: { branch: "main" } } };
    const created = await call("/services", { method: "POST", body: JSON.stringify({ environmentId: environment.id, name: "web", config: application }) });
    service = (await created.json()) as typeof service;
  });

  const answer = async (response: Response) => ({ status: response.status, body: (await response.json()) as { message: string; code: string } });
  const environmentNow = async () => (await (await call(`/environments/${environment.id}`)).json()) as typeof environment;

  it("refuses a NUL or a lone surrogate in any string, key, query or path with a 400 naming the field", async () => {
    const nested = { environmentId: environment.id, name: "web2", config: { git: { url: "https://example.test/app.git", ref: { branch: "main\u0000" } } } };
    expect(await answer(await call("/services", { method: "POST", body: JSON.stringify(nested) }))).toMatchObject({
      status: 400,
      body: { message: "config.git.ref.branch: must not contain a NUL character (\\u0000)" },
    });
    // JSON.stringify escapes a lone surrogate as \ud800: the server gets it as such.
    expect(await answer(await call("/projects", { method: "POST", body: JSON.stringify({ name: "a\ud800" }) }))).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/^name: must not contain a lone surrogate/) },
    });
    const key = await call(`/services/${service.id}`, { method: "PATCH", body: JSON.stringify({ config: { ["port\u0000"]: 1 } }) });
    expect(await answer(key)).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^config: has a key that must not contain a NUL/) } });
    expect(await answer(await call("/resolve?path=bad-input%00"))).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^path: /) } });
    expect((await call(`/environments/${environment.id}%00`)).status).toBe(400);
    expect((await call("/environments/%ED%A0%80")).status).toBe(400);
    expect((await call("/environments/%E0%A4%A")).status).toBe(400);
    // Bytes that are not UTF-8 would be read, and stored, as U+FFFD.
    const variable = { scope: "ENVIRONMENT", targetId: environment.id, key: "GREETING", value: "caf\xe9" };
    const latin1 = await call("/variables", { method: "PUT", body: Buffer.from(JSON.stringify(variable), "latin1") });
    expect(await answer(latin1)).toMatchObject({ status: 400, body: { message: "Request body is not valid UTF-8" } });
    expect(await (await call(`/variables?scope=ENVIRONMENT&targetId=${environment.id}`)).json()).toEqual([]);
  });

  it("refuses JSON nested thousands of levels deep with a 400, and a body over 1 MiB with a 413", async () => {
    const deep = `{"name":${"[".repeat(5000)}${"]".repeat(5000)}}`;
    expect(await answer(await call("/projects", { method: "POST", body: deep }))).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/is nested deeper than 32 levels$/) },
    });
    const deepObject = `{"config":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}`;
    expect((await call(`/services/${service.id}`, { method: "PATCH", body: deepObject })).status).toBe(400);
    expect((await call("/projects", { method: "POST", body: JSON.stringify({ name: "x".repeat(1024 * 1024) }) })).status).toBe(413);
  });

  it("refuses a PATCH whose body is not an object, or changes nothing, and leaves the row as it was", async () => {
    const before = await environmentNow();
    for (const body of ["[]", "null", '"protected"', "1", "true", '[{"protected":true}]']) {
      const response = await answer(await call(`/environments/${environment.id}`, { method: "PATCH", body }));
      expect([body, response]).toEqual([body, { status: 400, body: expect.objectContaining({ message: expect.stringMatching(/must be a JSON object/) }) }]);
    }
    // An empty change, or only a misspelt field (dropped by the schema), changes nothing: it says so.
    for (const body of ["{}", "", '{"protect":true}']) {
      expect(await answer(await call(`/environments/${environment.id}`, { method: "PATCH", body }))).toMatchObject({
        status: 400,
        body: { message: "Nothing to change: give schedule, expiresAt, protected or sleepAfterMinutes" },
      });
    }
    const connection = (await (
      await call("/git/connections", { method: "POST", token: owner, body: JSON.stringify({ provider: "github", name: "gh" }) })
    ).json()) as {
      connection: { id: string };
    };
    expect((await call(`/git/connections/${connection.connection.id}`, { method: "PATCH", token: owner, body: "{}" })).status).toBe(400);
    expect(await environmentNow()).toEqual(before);
  });

  it('takes only true and false as booleans: the string "false" is refused, over REST and then tRPC', async () => {
    const before = await environmentNow();
    const create = await call("/environments", { method: "POST", body: JSON.stringify({ projectId: project.id, name: "strict", protected: "false" }) });
    expect(await answer(create)).toMatchObject({ status: 400, body: { message: "protected: Invalid input: expected boolean, received string" } });
    for (const value of ["false", "true", 0, 1, null]) {
      expect((await call(`/environments/${environment.id}`, { method: "PATCH", body: JSON.stringify({ protected: value }) })).status).toBe(400);
    }
    const preview = await call(`/environments/${environment.id}/preview-blueprint`, { method: "PUT", body: JSON.stringify({ enabled: "false" }) });
    expect(preview.status).toBe(400);
    const triggers = await call(`/services/${service.id}/git-triggers`, { method: "PUT", body: JSON.stringify({ autoDeploy: "false" }) });
    expect(triggers.status).toBe(400);
    // The REST handler once set `coerce` on these very schemas, and tRPC calls went through them afterwards.
    const trpc = (path: string, input: object) =>
      fetch(`${web.url}/api/trpc/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${owner}` },
        body: JSON.stringify(input),
      });
    for (const [path, input] of [
      ["environments.update", { environmentId: environment.id, protected: "false" }],
      ["git.setPreviewBlueprint", { environmentId: environment.id, enabled: "false" }],
      ["services.setGitTriggers", { serviceId: service.id, autoDeploy: "false" }],
      ["environments.createRule", { projectId: project.id, namePattern: "trpc-*", priority: true }],
      ["environments.createRule", { projectId: project.id, namePattern: "trpc-*", priority: "" }],
      ["environments.createRule", { projectId: project.id, namePattern: "trpc-*", priority: [] }],
    ] as const) {
      expect([path, input, (await trpc(path, input)).status]).toEqual([path, input, 400]);
    }
    const nul = (await (await trpc("projects.create", { name: "a\u0000" })).json()) as { error: { message: string } };
    expect(JSON.parse(nul.error.message)).toEqual([{ code: "custom", path: ["name"], message: "must not contain a NUL character (\\u0000)" }]);
    expect(await environmentNow()).toEqual(before);
    expect(await (await call(`/services/${service.id}/git-triggers`)).json()).toMatchObject({ autoDeploy: true });
    expect(((await (await call(`/environments/${environment.id}`)).json()) as { previewBlueprint: unknown }).previewBlueprint).toBeNull();
    expect(await (await call(`/projects/${project.id}/rules`)).json()).toEqual([]);
  });

  it("takes only integers as a rule's priority, and digits only for an integer in the query string", async () => {
    const rule = (body: object) =>
      call(`/projects/${project.id}/rules`, { method: "POST", token: owner, body: JSON.stringify({ namePattern: "pr-*", ...body }) });
    for (const priority of [true, "", [], "5", 1.5, 1e6, null]) {
      expect([priority, (await rule({ priority })).status]).toEqual([priority, 400]);
    }
    expect(await (await rule({ priority: 5 })).json()).toMatchObject({ priority: 5 });
    const deployments = (query: string) => call(`/environments/${environment.id}/deployments?${query}`);
    for (const query of ["limit=1e1", "limit=", "limit=0x10", "limit=%205", "limit=true", "limit=1&limit=2"]) {
      expect([query, (await deployments(query)).status]).toEqual([query, 400]);
    }
    expect((await deployments("limit=2")).status).toBe(200);
    // Sequence numbers of log lines take 16 digits: every safe integer is taken (then the unknown service is not found), nothing past it.
    const logs = (after: string) => call(`/logs?serviceId=${randomUUID()}&after=${after}`);
    expect((await logs("1796527480090000")).status).toBe(404);
    expect((await logs(String(Number.MAX_SAFE_INTEGER))).status).toBe(404);
    expect((await logs("9007199254740993")).status).toBe(400);
  });

  it("refuses the year 0000, which PostgreSQL has not, in every date of the input", async () => {
    const before = await environmentNow();
    const year0 = encodeURIComponent("0000-06-01T00:00:00Z");
    for (const response of [
      await call(`/environments/${environment.id}`, { method: "PATCH", body: JSON.stringify({ expiresAt: "0000-06-01T00:00:00Z" }) }),
      await call(`/audit?from=${year0}`, { token: owner }),
      await call(`/audit?to=${year0}`, { token: owner }),
      await call(`/logs?serviceId=${service.id}&since=${year0}`),
    ]) {
      expect(await answer(response)).toMatchObject({ status: 400, body: { message: expect.stringMatching(/: the year must be 0001 or later$/) } });
    }
    expect(await environmentNow()).toEqual(before);
    expect((await call(`/audit?from=${encodeURIComponent("0001-01-01T00:00:00Z")}`, { token: owner })).status).toBe(200);
  });

  it("answers another organization's cluster in a rule 404, as an unknown one, and creates no rule", async () => {
    for (const clusterId of [other.clusterId, "00000000-0000-4000-8000-000000000000"]) {
      const response = await call(`/projects/${project.id}/rules`, { method: "POST", token: owner, body: JSON.stringify({ namePattern: "x-*", clusterId }) });
      expect(await answer(response)).toMatchObject({ status: 404, body: { message: "Cluster not found" } });
    }
    const rules = (await (await call(`/projects/${project.id}/rules`)).json()) as { namePattern: string }[];
    expect(rules.map((r) => r.namePattern)).not.toContain("x-*");
  });

  it("reads query parameters named like Object's own properties as any other (trpc-to-openapi's parser failed with a 500)", async () => {
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      expect([name, (await call(`/projects?${name}=x`)).status]).toEqual([name, 200]);
      expect([name, (await call(`/resolve?path=bad-input&${name}=`)).status]).toEqual([name, 200]);
    }
  });

  it("answers an unknown operation 404 and a method an operation does not take 405", async () => {
    expect((await call("/nothing-here")).status).toBe(404);
    expect((await call("//example.com/projects")).status).toBe(404);
    // What a form on another site can send with the session cookie: refused, even with no body.
    const form = await call("/deployments/00000000-0000-4000-8000-000000000000/cancel", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(form.status).toBe(415);
    const wrongMethod = await call("/projects", { method: "PATCH", body: "{}" });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("GET, POST");
  });
});
