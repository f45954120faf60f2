import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { startWebServer } from "../web-server";

let web: Awaited<ReturnType<typeof startWebServer>>;
let token: string;

beforeAll(async () => {
  const database = await createTestDatabase();
  const services = testServices(database.db);
  const org = await seedOrganization(services, "rest-query");
  token = await org.apiToken("DEVELOPER");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
  const created = await get("/projects", { method: "POST", body: JSON.stringify({ name: "query-demo" }) });
  expect(created.status).toBe(200);
});
afterAll(() => web?.close());

async function get(path: string, init: RequestInit = {}) {
  const response = await fetch(`${web.url}/api/v1${path}`, {
    ...init,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as { message?: string; projectId?: string } };
}

describe("a REST query string", () => {
  it("is read as UTF-8 percent-encoded, `+` a space, as URLSearchParams reads it", async () => {
    expect(await get("/resolve?path=query-demo")).toMatchObject({ status: 200, body: { projectId: expect.any(String) } });
    expect(await get("/resolve?path=caf%C3%A9+%F0%9F%9A%A2%2B50%")).toEqual({
      status: 404,
      body: { code: "NOT_FOUND", message: 'Project "café 🚢+50%" not found' },
    });
  });

  it("is refused with a 400 naming the parameter when its bytes are not UTF-8, as a path segment is", async () => {
    const refused = { status: 400, body: { code: "BAD_REQUEST", message: "path: the query parameter is not valid percent-encoded UTF-8" } };
    // A lone surrogate's bytes, a byte UTF-8 never has, an overlong `/`, a sequence cut short.
    for (const value of ["%ED%A0%80", "%FF", "%C0%AF", "a%E2%82"]) expect(await get(`/resolve?path=${value}`), value).toEqual(refused);
    expect(await get("/resolve?pa%FFth=x")).toMatchObject({
      status: 400,
      body: { message: "pa%FFth: the query parameter's name is not valid percent-encoded UTF-8" },
    });
  });
});
