import { createTRPCClient, httpBatchLink } from "@trpc/client";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { startWebServer } from "../web-server";
import { MAX_BATCH_CALLS } from "./batch-limit";
import type { AppRouter } from "./root";

let web: Awaited<ReturnType<typeof startWebServer>>;
let token: string;

beforeAll(async () => {
  const database = await createTestDatabase();
  const services = testServices(database.db);
  const org = await seedOrganization(services, "trpc-batch");
  token = await org.apiToken("DEVELOPER");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
});
afterAll(() => web?.close());

type Answer = { status: number; body: unknown };

async function send(path: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(`${web.url}/api/trpc/${path}`, {
    ...init,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: await response.json() };
}

/** A batch of `count` calls, as httpBatchLink sends it: the paths joined by commas, the inputs keyed by index. */
const inputs = (count: number, input: (index: number) => unknown) => JSON.stringify(Object.fromEntries(Array.from({ length: count }, (_, i) => [i, input(i)])));
const listBatch = (count: number) =>
  send(`${Array<string>(count).fill("projects.list").join(",")}?batch=1&input=${encodeURIComponent(inputs(count, () => ({})))}`);
const createBatch = (count: number, prefix: string) =>
  send(`${Array<string>(count).fill("projects.create").join(",")}?batch=1`, { method: "POST", body: inputs(count, (i) => ({ name: `${prefix}-${i}` })) });
const projectNames = async () => ((await listBatch(1)).body as [{ result: { data: { name: string }[] } }])[0].result.data.map((p) => p.name);

const refused = {
  status: 400,
  body: {
    error: { message: `A batch may hold at most ${MAX_BATCH_CALLS} calls: send the others in another request`, data: { code: "BAD_REQUEST", httpStatus: 400 } },
  },
};

describe("a tRPC batch", () => {
  it(`of more than ${MAX_BATCH_CALLS} calls is refused with a 400 that says the limit, before any call runs`, async () => {
    expect(await listBatch(MAX_BATCH_CALLS + 1)).toMatchObject(refused);
    expect(await createBatch(MAX_BATCH_CALLS + 1, "over")).toMatchObject(refused);
    expect(await createBatch(1_000, "far-over")).toMatchObject(refused);
    expect(await projectNames()).toEqual([]);
  });

  it(`of ${MAX_BATCH_CALLS} calls runs them all`, async () => {
    const listed = await listBatch(MAX_BATCH_CALLS);
    expect(listed.status).toBe(200);
    expect(listed.body).toHaveLength(MAX_BATCH_CALLS);
    const created = await createBatch(MAX_BATCH_CALLS, "at");
    expect(created.status).toBe(200);
    expect(await projectNames()).toHaveLength(MAX_BATCH_CALLS);
  });

  it("is never too large from a client with the dashboard's maxItems: it splits its calls", async () => {
    const client = createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: `${web.url}/api/trpc`, maxItems: MAX_BATCH_CALLS, headers: { authorization: `Bearer ${token}` } })],
    });
    const lists = await Promise.all(Array.from({ length: MAX_BATCH_CALLS * 2 + 1 }, () => client.projects.list.query({})));
    expect(lists).toHaveLength(MAX_BATCH_CALLS * 2 + 1);
  });
});
