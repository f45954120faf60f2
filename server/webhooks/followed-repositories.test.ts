import { testPort } from "../../test/support/ports";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { deliver, githubExample } from "../../test/support/webhooks";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { startWebServer } from "../web-server";

let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;
let url: string;

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "followed");
  const port = await testPort();
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port, host: "127.0.0.1" });
  url = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await web?.close();
});

describe("the intake's followed repositories", () => {
  it("settles a push no service can concern at once, and queues the next one as soon as a service follows its repository", async () => {
    const admin = createCaller({ services, actor: org.as("ADMIN") });
    const developer = createCaller({ services, actor: org.as("DEVELOPER") });
    const { connection, secret } = await admin.git.connect({ provider: "github", name: "followed" });
    const hook = `${url}/api/hooks/${connection.id}`;
    const push = () => deliver(hook, { provider: "github", secret, event: "push", payload: githubExample("push", (e) => e.ref === "refs/heads/master") });

    const first = await push();
    expect(first.body.status).toBe("unfollowed");
    expect(await admin.git.delivery({ deliveryId: first.body.id as string })).toMatchObject({
      status: "PROCESSED",
      outcome: { reason: "no service follows this repository" },
    });

    // The repository of GitHub's example push, followed from now on. The trigger on services
    // notifies every web process; the cached set (kept 5 s otherwise) is forgotten at once.
    const project = await developer.projects.create({ name: "followed" });
    const environment = await developer.environments.create({ projectId: project.id, name: "main" });
    await developer.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "https://github.com/Codertocat/Hello-World.git" } } });
    const queued = await eventually(
      async () => {
        const sent = await push();
        return sent.body.status === "queued" ? sent : undefined;
      },
      1_000,
      "a push queued for the worker",
    );
    expect(queued.status).toBe(202);
  });
});
