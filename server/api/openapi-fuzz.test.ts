import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import pino from "pino";
import type { AnyTRPCProcedure } from "@trpc/server";
import type { OpenApiMeta } from "trpc-to-openapi";
import { createTestDatabase } from "../../test/database";
import { describeRequest, operationsOf, RequestArbitraries, type FuzzRequest, type KnownValues } from "../../test/support/openapi-fuzz";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import type { Services } from "../context";
import { webhookDeliveries } from "../db/schema";
import { startWebServer } from "../web-server";
import { appRouter, createCaller } from "./root";

/**
 * Issue 13: bad input gets a 4xx, never a 500. Every operation of the OpenAPI document gets
 * generated requests (bad bodies, path parameters and query strings) over real HTTP, as an
 * OWNER with an API token; none may answer 5xx. A failure names the seed that replays it:
 * `FUZZ_SEED=<seed> npx vitest run server/api/openapi-fuzz.test.ts`, and the cause the server logged.
 */
const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** A few hundred requests in all, about ten seconds; FUZZ_RUNS=100 searches further. */
const RUNS_PER_OPERATION = Number(process.env.FUZZ_RUNS ?? 8);
/** Shrinking a failure sends a request per step: bounded too. */
const TIME_PER_OPERATION_MS = 10_000;

let web: Awaited<ReturnType<typeof startWebServer>>;
let token: string;
let known: KnownValues;
/** The server's error log lines: a 500 answers "Internal error", its cause is logged. */
const errors: string[] = [];

/** A project, an environment with a service and a deployment, a rule, a git connection with a delivery, an invite, a token. */
async function seedResources(services: Services, org: SeededOrganization, name: string) {
  const api = createCaller({ services, actor: org.as("OWNER") });
  const project = await api.projects.create({ name });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const git = { url: "https://example.test/app.git", ref: { branch: "main" } };
  const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git } });
  // One service of each other kind: an update takes a different path for each.
  const others = await Promise.all([
    api.services.create({ environmentId: environment.id, name: "box", kind: "CONTAINER", config: { image: { name: "nginx", tag: "1" } } }),
    api.services.create({ environmentId: environment.id, name: "db", kind: "DATABASE", config: { engine: "postgresql" } }),
    api.services.create({
      environmentId: environment.id,
      name: "cron",
      kind: "JOB",
      config: { git, command: "true", trigger: { type: "cron", schedule: "0 3 * * *" } },
    }),
  ]);
  const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
  const rule = await api.environments.createRule({ projectId: project.id, namePattern: "pr-*" });
  const { connection } = await api.git.connect({ provider: "github", name: `${name}-github` });
  const [delivery] = await services.db
    .insert(webhookDeliveries)
    .values({
      organizationId: org.organizationId,
      connectionId: connection.id,
      deliveryId: `${name}-1`,
      event: "ping",
      headers: {},
      payload: "{}",
      status: "IGNORED",
    })
    .returning();
  const { invite } = await api.members.invite({ role: "DEVELOPER" });
  const { apiToken } = await api.organization.createToken({ name: `${name}-ci`, role: "VIEWER" });
  return {
    projectId: [project.id],
    environmentId: [environment.id],
    serviceId: [service.id, ...others.map((s) => s.id)],
    deploymentId: [deployment.id],
    ruleId: [rule.id],
    connectionId: [connection.id],
    deliveryId: [delivery!.id],
    inviteId: [invite.id],
    tokenId: [apiToken.id],
    clusterId: [org.clusterId],
    userId: [org.as("OWNER").id!],
  };
}

beforeAll(async () => {
  const database = await createTestDatabase();
  const services = testServices(database.db);
  const org = await seedOrganization(services, "fuzz");
  const other = await seedOrganization(services, "fuzz-other");
  token = await org.apiToken("OWNER");
  const own = await seedResources(services, org, "fuzz");
  const foreign = await seedResources(services, other, "foreign");
  // Each id under the names that take it; the fuzzer's own token is not among them, so that it is not revoked.
  const both = (key: keyof typeof own) => [...own[key], ...foreign[key]];
  known = {
    ...Object.fromEntries(Object.keys(own).map((key) => [key, both(key as keyof typeof own)])),
    serviceIds: both("serviceId"),
    targetId: [...both("projectId"), ...both("environmentId"), ...both("serviceId")],
    url: ["https://example.test/app.git"],
    timeZone: ["UTC", "Europe/Paris"],
    schedule: ["0 3 * * *"],
    name: ["web", "api"],
  };
  const logger = pino({ level: "error" }, { write: (line: string) => void errors.push(line) });
  web = await startWebServer({ services, databaseUrl: database.url, logger, port: 0, host: "127.0.0.1" });
});
afterAll(() => web?.close());

function send(request: FuzzRequest): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (request.contentType !== null) headers["content-type"] = request.contentType;
  return fetch(`${web.url}/api/v1${request.path}${request.query ? `?${request.query}` : ""}`, {
    method: request.method,
    headers,
    body: typeof request.body === "string" ? request.body : request.body ? new Uint8Array(request.body) : undefined,
  });
}

describe("the REST API under generated requests", () => {
  it("answers every operation of its OpenAPI document with less than 500, whatever the request", { timeout: 120_000 }, async () => {
    const operations = operationsOf(await (await fetch(`${web.url}/api/v1/openapi.json`)).json());
    const procedures = Object.values(appRouter._def.procedures as unknown as Record<string, AnyTRPCProcedure>);
    expect(operations).toHaveLength(procedures.filter((p) => (p._def.meta as OpenApiMeta | undefined)?.openapi).length);

    const requests = new RequestArbitraries(operations, known);
    const failures: string[] = [];
    for (const [index, operation] of operations.entries()) {
      const property = fc.asyncProperty(requests.request(operation), async (request) => {
        const logged = errors.length;
        const response = await send(request);
        if (response.status >= 500) {
          const cause = errors.slice(logged).join("").slice(0, 2000);
          throw new Error(`HTTP ${response.status} for ${describeRequest(request)}\n${await response.text()}\n${cause}`);
        }
      });
      const details = await fc.check(property, {
        seed: seed + index,
        numRuns: RUNS_PER_OPERATION,
        plugins: [fc.interruptAfterTimeLimit(TIME_PER_OPERATION_MS)],
      });
      if (details.failed) failures.push(`${operation.method} ${operation.path}: ${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}`);
    }
    expect(failures, `replay with FUZZ_SEED=${seed} FUZZ_RUNS=${RUNS_PER_OPERATION} npx vitest run server/api/openapi-fuzz.test.ts`).toEqual([]);
    expect((await fetch(`${web.url}/api/health`)).status).toBe(200);
  });
});
