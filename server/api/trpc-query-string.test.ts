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
  const org = await seedOrganization(services, "trpc-query");
  token = await org.apiToken("DEVELOPER");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
});
afterAll(() => web?.close());

/** A GET as the dashboard's httpBatchLink sends it, with the query string written by hand (fetch keeps its `%XX` as they are). */
async function get(pathAndQuery: string) {
  const response = await fetch(`${web.url}/api/trpc/${pathAndQuery}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as unknown };
}

/** `{"path":"<value>"}` percent-encoded, with `value` spliced in as it is (already encoded, or not). */
const resolveInput = (value: string) => `${encodeURIComponent('{"path":"')}${value}${encodeURIComponent('"}')}`;

const refused = (parameter: string) => ({
  error: { message: `${parameter}: the query parameter is not valid percent-encoded UTF-8`, data: { code: "BAD_REQUEST", httpStatus: 400 } },
});

describe("a tRPC GET's query string", () => {
  it("reads valid UTF-8 as sent, non-ASCII text included", async () => {
    const answer = await get(`organization.resolve?input=${resolveInput(encodeURIComponent("café 🚢+50%"))}`);
    expect(answer).toMatchObject({ status: 404, body: { error: { message: 'Project "café 🚢+50%" not found' } } });
  });

  it("is refused with a 400 naming the parameter when `input` has bytes that are not UTF-8, rather than read as U+FFFD", async () => {
    // A lone surrogate's bytes, a byte UTF-8 never has, an overlong `/`, a sequence cut short.
    for (const bytes of ["%ED%A0%80", "%FF", "%C0%AF", "a%E2%82"]) {
      expect(await get(`organization.resolve?input=${resolveInput(bytes)}`), bytes).toMatchObject({ status: 400, body: refused("input") });
    }
  });

  it("is refused in a batch too, before any of its calls runs", async () => {
    const batch = `organization.resolve,projects.list?batch=1&input=${encodeURIComponent('{"0":{"path":"caf')}%FF${encodeURIComponent('"},"1":{}}')}`;
    const answer = await get(batch);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject([refused("input"), refused("input")]);
    expect(answer.body).toHaveLength(2);
    // A mutation's input is its body, but its query string is held to the same: nothing is created.
    const create = await fetch(`${web.url}/api/trpc/projects.create?batch=1&note=caf%FF`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ 0: { name: "never" } }),
    });
    expect(create.status).toBe(400);
    expect(await create.json()).toMatchObject([refused("note")]);
    expect(await get(`projects.list?input=${encodeURIComponent("{}")}`)).toMatchObject({ status: 200, body: { result: { data: [] } } });
    // The same batch with valid text runs both calls.
    const valid = await get(`organization.resolve,projects.list?batch=1&input=${encodeURIComponent('{"0":{"path":"café"},"1":{}}')}`);
    expect(valid.body).toMatchObject([{ error: { message: 'Project "café" not found' } }, { result: { data: [] } }]);
  });
});
