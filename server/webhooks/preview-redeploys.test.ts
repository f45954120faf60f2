/**
 * A pull request update that leaves a preview's head commit, head branch and base branch as it
 * was last deployed for redeploys nothing: Bitbucket's pullrequest:updated for a new title (it does
 * not say what changed), a redelivered `synchronize` or GitLab `update`. On a real PostgreSQL,
 * deliveries through the real intake over HTTP, processed by hand (processPendingDeliveries, what
 * the process_webhooks task calls); no engine: deployments are checked as requested.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments, environments, gitPreviews, webhookDeliveries } from "../db/schema";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { deliver, fixturePayload, githubExample } from "../../test/support/webhooks";
import { createWebhookIntake } from "./intake";
import { processPendingDeliveries } from "./process";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let server: http.Server;
let intake: ReturnType<typeof createWebhookIntake>;
const hooks = {} as Record<"github" | "gitlab" | "bitbucket", { id: string; url: string; secret: string }>;
/** Blueprint environment ids by provider. */
const blueprints = {} as Record<keyof typeof hooks, string>;

const admin = () => createCaller({ services, actor: org.as("ADMIN") });
const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });

type Preview = { environmentId: string; name: string; created: boolean; deploymentId: string | null };
type PullRequestOutcome = { action: string; previews: Preview[]; unchanged?: { blueprintEnvironmentId: string; environmentId: string; name: string }[] };

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "redeploys");
  intake = createWebhookIntake(services, { cacheMs: 0 });
  server = http.createServer((req, res) => void intake.handle(req, res).then((handled) => handled || res.writeHead(404).end()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  services = { ...services, publicUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  const projectId = (await developer().projects.create({ name: "shop" })).id;
  const repositories = {
    github: "https://github.com/Codertocat/Hello-World.git",
    gitlab: "http://example.com/mike/diaspora.git",
    bitbucket: "git@bitbucket.org:team_name/repo_name.git",
  };
  for (const provider of ["github", "gitlab", "bitbucket"] as const) {
    const { connection, secret } = await admin().git.connect({ provider, name: provider });
    hooks[provider] = { id: connection.id, url: connection.webhookUrl, secret };
    blueprints[provider] = (await developer().environments.create({ projectId, name: provider })).id;
    await developer().services.create({
      environmentId: blueprints[provider],
      name: "web",
      config: { git: { url: repositories[provider], ref: { branch: "master" } } },
    });
    await developer().git.setPreviewBlueprint({ environmentId: blueprints[provider], enabled: true, lifetimeSeconds: 3600 });
  }
}, 60_000);

afterAll(async () => {
  await intake?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

async function send(provider: keyof typeof hooks, event: string, payload: unknown) {
  const sent = await deliver(hooks[provider].url, { provider, secret: hooks[provider].secret, event, payload });
  expect(sent.body.status, JSON.stringify(sent.body)).toBe("queued");
  return sent.body.id as string;
}

/** Sends the delivery, processes everything pending, and returns its pull request's outcome and summary. */
async function pullRequest(provider: keyof typeof hooks, event: string, payload: unknown) {
  const id = await send(provider, event, payload);
  await processPendingDeliveries(services);
  return settled(id);
}

async function settled(id: string) {
  const [row] = await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
  expect(row!.status, row!.error ?? "").toBe("PROCESSED");
  const outcome = (row!.outcome as { events: PullRequestOutcome[] }).events[0]!;
  return { ...outcome, summary: (await admin().git.delivery({ deliveryId: id })).summary };
}

const deploymentsOf = async (environmentId: string) => services.db.select().from(deployments).where(eq(deployments.environmentId, environmentId));
const expiryOf = async (environmentId: string) =>
  (await services.db.select({ expiresAt: environments.expiresAt }).from(environments).where(eq(environments.id, environmentId)))[0]!.expiresAt;
const previewRow = async (environmentId: string) => (await services.db.select().from(gitPreviews).where(eq(gitPreviews.environmentId, environmentId)))[0]!;

describe("pull request updates that change nothing a preview was deployed from", () => {
  it("on Bitbucket: a title edit (pullrequest:updated at the same head commit) redeploys nothing; a new commit does", async () => {
    const [opened] = (await pullRequest("bitbucket", "pullrequest:created", fixturePayload("bitbucket", "pullrequest-created"))).previews;
    expect(opened).toMatchObject({ created: true });
    const expiry = await expiryOf(opened!.environmentId);

    const retitled = fixturePayload("bitbucket", "pullrequest-updated");
    const pr = retitled.pullrequest as { title: string; source: { commit: { hash: string } } };
    pr.title = "A better title";
    pr.source.commit.hash = "d3022fc0ca3d";
    const edit = await pullRequest("bitbucket", "pullrequest:updated", retitled);
    expect(edit.previews).toEqual([]);
    expect(edit.unchanged).toEqual([{ blueprintEnvironmentId: blueprints.bitbucket, environmentId: opened!.environmentId, name: opened!.name }]);
    expect(edit.summary).toBe(`PR #1 synchronize: ${opened!.name} unchanged`);
    expect(await deploymentsOf(opened!.environmentId)).toHaveLength(1);
    // No new commit: its lifetime is not extended either.
    expect(await expiryOf(opened!.environmentId)).toEqual(expiry);

    const [pushed] = (await pullRequest("bitbucket", "pullrequest:updated", fixturePayload("bitbucket", "pullrequest-updated"))).previews;
    expect(pushed).toMatchObject({ environmentId: opened!.environmentId, created: false });
    expect(await deploymentsOf(opened!.environmentId)).toHaveLength(2);
    expect(await previewRow(opened!.environmentId)).toMatchObject({ headCommit: "8e9f2c1a7b3d", baseBranch: "master" });
  });

  it("on GitHub and GitLab: a redelivered synchronize or update of the same head redeploys nothing", async () => {
    const synchronize = () => {
      const payload = githubExample("pull_request", (e) => e.action === "synchronize");
      (payload.pull_request as { head: { sha: string } }).head.sha = "0123456789abcdef0123456789abcdef01234567";
      return payload;
    };
    const [opened] = (
      await pullRequest(
        "github",
        "pull_request",
        githubExample("pull_request", (e) => e.action === "opened"),
      )
    ).previews;
    const [synced] = (await pullRequest("github", "pull_request", synchronize())).previews;
    expect(synced).toMatchObject({ environmentId: opened!.environmentId, created: false });
    const again = await pullRequest("github", "pull_request", synchronize());
    expect(again).toMatchObject({ previews: [], unchanged: [{ environmentId: opened!.environmentId }] });
    expect(await deploymentsOf(opened!.environmentId)).toHaveLength(2);

    const [mr] = (await pullRequest("gitlab", "Merge Request Hook", fixturePayload("gitlab", "merge-request-open"))).previews;
    const [updated] = (await pullRequest("gitlab", "Merge Request Hook", fixturePayload("gitlab", "merge-request-update"))).previews;
    expect(updated).toMatchObject({ environmentId: mr!.environmentId, created: false });
    const redelivered = await pullRequest("gitlab", "Merge Request Hook", fixturePayload("gitlab", "merge-request-update"));
    expect(redelivered).toMatchObject({ previews: [], unchanged: [{ environmentId: mr!.environmentId }] });
    expect(await deploymentsOf(mr!.environmentId)).toHaveLength(2);
  });

  it("deploys a new head on the retry after requesting its deployment failed", async () => {
    const numbered = (sha: string) => {
      const payload = githubExample("pull_request", (e) => e.action === "synchronize");
      payload.number = 77;
      (payload.pull_request as { head: { sha: string } }).head.sha = sha;
      return payload;
    };
    const [opened] = (await pullRequest("github", "pull_request", numbered("ec26c3e57ca3a959ca5aad62de7213c562f8c821"))).previews;
    // The database refuses this preview's next deployment once (a sequence is not rolled back with the failed insert).
    await services.db.execute(sql`create sequence deploy_failures`);
    await services.db.execute(
      sql.raw(`create function refuse_next_deploy() returns trigger language plpgsql as $$
        begin
          if new.environment_id = '${opened!.environmentId}' and nextval('deploy_failures') = 1 then
            raise exception 'the database failed once';
          end if;
          return new;
        end $$`),
    );
    await services.db.execute(sql`create trigger refuse_next_deploy before insert on deployments for each row execute function refuse_next_deploy()`);
    try {
      const id = await send("github", "pull_request", numbered("fedcba9876543210fedcba9876543210fedcba98"));
      // The task's run fails, the delivery stays pending, and the task's retry processes it.
      await expect(processPendingDeliveries(services)).rejects.toMatchObject({ cause: { message: "the database failed once" } });
      await processPendingDeliveries(services);
      const [retried] = (await settled(id)).previews;
      expect(retried).toMatchObject({ environmentId: opened!.environmentId, created: false });
      expect(await deploymentsOf(opened!.environmentId)).toHaveLength(2);
      expect((await previewRow(opened!.environmentId)).headCommit).toBe("fedcba9876543210fedcba9876543210fedcba98");
    } finally {
      await services.db.execute(sql`drop trigger refuse_next_deploy on deployments`);
      await services.db.execute(sql`drop function refuse_next_deploy`);
      await services.db.execute(sql`drop sequence deploy_failures`);
    }
  });
});
