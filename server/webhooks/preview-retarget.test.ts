/**
 * A pull request moved to another base branch moves its previews: the previews of blueprints
 * that do not follow the new base are deleted (they run with that blueprint's secrets and
 * config), and the blueprints that do follow it preview the pull request as for an opened one.
 * A title or description edit changes nothing. On a real PostgreSQL, with the intake over real
 * HTTP and graphile-worker processing the deliveries; no engine: deployments are checked as
 * requested (test/integration/git.test.ts runs them).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { and, eq, isNull } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments, environments, gitPreviews, webhookDeliveries } from "../db/schema";
import { repositoryKey } from "../git/repository-url";
import { startWorker } from "../../worker/runner";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { gitOf, seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { deliver, fixturePayload, githubExample } from "../../test/support/webhooks";
import { createWebhookIntake } from "./intake";

const logger = pino({ level: "silent" });
const GITHUB_HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const GITHUB_REPO = "https://github.com/Codertocat/Hello-World.git";
const GITLAB_REPO = "http://example.com/mike/diaspora.git";
const BITBUCKET_REPO = "git@bitbucket.org:team_name/repo_name.git";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let worker: Runner;
let server: http.Server;
let intake: ReturnType<typeof createWebhookIntake>;
const hooks: Record<"github" | "gitlab" | "bitbucket" | "generic", { id: string; url: string; secret: string }> = {} as never;
/** Environment ids by name; each provider's repository has a blueprint on its main branch and one on `develop`. */
const env: Record<string, string> = {};

const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });
const admin = () => createCaller({ services, actor: org.as("ADMIN") });

type Preview = { blueprintEnvironmentId: string; environmentId: string; name: string; created: boolean; deploymentId: string | null; deleted: boolean };
type PullRequestOutcome = { action: string; baseBranch?: string; previews: Preview[]; skipped?: string };

async function sendAndSettle(provider: keyof typeof hooks, event: string, payload: unknown) {
  const sent = await deliver(hooks[provider].url, { provider, secret: hooks[provider].secret, event, payload });
  expect(sent.status, JSON.stringify(sent.body)).toBe(202);
  const id = sent.body.id as string;
  return eventually(
    async () => {
      const [row] = await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
      return row && row.status !== "PENDING" ? row : undefined;
    },
    15_000,
    `delivery ${id} to be processed`,
  );
}

/** The pull request's event in a processed delivery's outcome. */
async function pullRequestOutcome(provider: keyof typeof hooks, event: string, payload: unknown): Promise<PullRequestOutcome> {
  const row = await sendAndSettle(provider, event, payload);
  expect(row, JSON.stringify(row.error)).toMatchObject({ status: "PROCESSED" });
  return (row.outcome as { events: PullRequestOutcome[] }).events[0]!;
}

/** The blueprints that have an open preview of pull request `number` of the repository. */
async function openPreviewBlueprints(repository: string, number: number): Promise<string[]> {
  const rows = await services.db
    .select({ blueprint: gitPreviews.blueprintEnvironmentId })
    .from(gitPreviews)
    .where(
      and(
        eq(gitPreviews.organizationId, org.organizationId),
        eq(gitPreviews.repository, repositoryKey(repository)!),
        eq(gitPreviews.number, number),
        isNull(gitPreviews.closedAt),
      ),
    );
  return rows.map((r) => r.blueprint).sort();
}

async function deploymentRow(id: string) {
  const [row] = await services.db.select().from(deployments).where(eq(deployments.id, id));
  return row!;
}

const deploymentsOf = async (environmentId: string) => services.db.select().from(deployments).where(eq(deployments.environmentId, environmentId));

/** A deleted preview of one blueprint, then a new one of the other, deployed whole at `commit`. */
async function expectMoved(
  outcome: PullRequestOutcome,
  from: { blueprint: string; environmentId: string },
  to: { blueprint: string; name: string },
  commit: string,
) {
  expect(outcome.previews).toHaveLength(2);
  const [deleted, created] = outcome.previews as [Preview, Preview];
  expect(deleted).toMatchObject({ blueprintEnvironmentId: from.blueprint, environmentId: from.environmentId, deleted: true, created: false });
  expect((await deploymentRow(deleted.deploymentId!)).action).toBe("DELETE");
  expect(created).toMatchObject({ blueprintEnvironmentId: to.blueprint, name: to.name, created: true, deleted: false });
  const deployment = await deploymentRow(created.deploymentId!);
  expect(deployment).toMatchObject({ action: "DEPLOY", serviceIds: null, origin: "WEBHOOK" });
  expect(deployment.snapshot.services.map((s) => (s.kind === "APPLICATION" ? s.config.git.ref : null))).toEqual([{ commit }]);
  const [clone] = await services.db.select().from(environments).where(eq(environments.id, created.environmentId));
  expect(clone).toMatchObject({ mode: "PREVIEW", clonedFromId: to.blueprint });
  return created;
}

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "retarget");
  intake = createWebhookIntake(services, { logger, cacheMs: 0, rejectFlushMs: 20 });
  server = http.createServer((req, res) => {
    void intake.handle(req, res).then((handled) => handled || res.writeHead(404).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  services = { ...services, publicUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  worker = await startWorker({ services, connectionString: database.url, logger });

  for (const provider of ["github", "gitlab", "bitbucket", "generic"] as const) {
    // Without an API token: the previews are not reported to the provider, which is not what these tests are about.
    const { connection, secret } = await admin().git.connect({ provider, name: provider });
    hooks[provider] = { id: connection.id, url: connection.webhookUrl, secret };
  }
  const blueprint = async (project: string, name: string, service: string, url: string, branch: string) => {
    const projectId = (await developer().projects.list({})).find((p) => p.name === project)?.id ?? (await developer().projects.create({ name: project })).id;
    env[name] = (await developer().environments.create({ projectId, name })).id;
    await developer().services.create({ environmentId: env[name]!, name: service, config: { git: { url, ref: { branch } } } });
    await developer().git.setPreviewBlueprint({ environmentId: env[name]!, enabled: true });
  };
  await blueprint("hub", "dev", "web", GITHUB_REPO, "master");
  await blueprint("hub", "staging", "web", "git@github.com:Codertocat/Hello-World.git", "develop");
  await blueprint("lab", "gl", "diaspora", GITLAB_REPO, "master");
  await blueprint("lab", "gl-next", "diaspora", GITLAB_REPO, "develop");
  await blueprint("bucket", "bb", "repo", BITBUCKET_REPO, "master");
  await blueprint("bucket", "bb-next", "repo", BITBUCKET_REPO, "develop");
  await blueprint("plain", "main", "app", "https://git.example.com/team/plain.git", "main");
  await blueprint("plain", "next", "app", "https://git.example.com/team/plain.git", "develop");
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await intake?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

describe("a retargeted pull request's previews", () => {
  /** GitHub's pull request #2 (@octokit/webhooks-examples), `action` against `base`, with `changes` for an edit. */
  const github = (action: string, base = "master", changes?: Record<string, unknown>) => {
    const payload = githubExample("pull_request", (e) => e.action === (action === "edited" ? "opened" : action));
    payload.action = action;
    (payload.pull_request as { base: { ref: string } }).base.ref = base;
    if (changes) payload.changes = changes;
    return payload;
  };

  it("on GitHub: a title edit changes nothing; a new base deletes the old blueprint's preview and opens the new one's", async () => {
    const [opened] = (await pullRequestOutcome("github", "pull_request", github("opened"))).previews;
    expect(opened).toMatchObject({ blueprintEnvironmentId: env.dev, name: "pr-2", created: true });

    // Not acted on: stored as ignored, nothing deployed, the preview stays.
    const retitled = await sendAndSettle("github", "pull_request", github("edited", "master", { title: { from: "Update the README" } }));
    expect(retitled.status).toBe("IGNORED");
    expect(await deploymentsOf(opened!.environmentId)).toHaveLength(1);
    expect(await openPreviewBlueprints(GITHUB_REPO, 2)).toEqual([env.dev]);

    const retargeted = await sendAndSettle(
      "github",
      "pull_request",
      github("edited", "develop", { base: { ref: { from: "master" }, sha: { from: GITHUB_HEAD } } }),
    );
    const outcome = (retargeted.outcome as { events: PullRequestOutcome[] }).events[0]!;
    expect(outcome).toMatchObject({ action: "retargeted", baseBranch: "develop" });
    // `pr-2` is still taken (its DELETE waits for an engine): the new preview's name says whose it is.
    const moved = await expectMoved(
      outcome,
      { blueprint: env.dev!, environmentId: opened!.environmentId },
      { blueprint: env.staging!, name: "pr-2-staging" },
      GITHUB_HEAD,
    );
    expect(gitOf((await developer().services.list({ environmentId: moved.environmentId }))[0]!).ref).toEqual({ branch: "changes" });
    expect(await openPreviewBlueprints(GITHUB_REPO, 2)).toEqual([env.staging]);
    const [listed] = await admin().git.deliveries({ connectionId: hooks.github.id });
    expect(listed!.summary).toBe("PR #2 retargeted: pr-2 deleted, pr-2-staging");

    // Its new commits redeploy the new base's preview; closing deletes it.
    const synchronized = github("synchronize", "develop");
    (synchronized.pull_request as { head: { sha: string } }).head.sha = "0123456789abcdef0123456789abcdef01234567";
    const [synced] = (await pullRequestOutcome("github", "pull_request", synchronized)).previews;
    expect(synced).toMatchObject({ environmentId: moved.environmentId, created: false, deleted: false });
    const [closed] = (await pullRequestOutcome("github", "pull_request", github("closed", "develop"))).previews;
    expect(closed).toMatchObject({ environmentId: moved.environmentId, deleted: true });
    expect(await openPreviewBlueprints(GITHUB_REPO, 2)).toEqual([]);
  });

  it("on GitHub, Gitea and Forgejo: refuses a fork's pull request retargeted as when it opened", async () => {
    // Gitea's and Forgejo's retarget: GitHub's event, with the old base in `changes.ref`.
    const fork = github("edited", "develop", { ref: { from: "master" } });
    fork.number = 99;
    const head = (fork.pull_request as { head: { repo: Record<string, unknown> } }).head;
    head.repo = { ...head.repo, full_name: "mallory/Hello-World", clone_url: "https://github.com/mallory/Hello-World.git" };
    const outcome = await pullRequestOutcome("github", "pull_request", fork);
    expect(outcome).toMatchObject({ action: "retargeted", previews: [] });
    expect(outcome.skipped).toMatch(/fork/);
    const names = (await services.db.select({ name: environments.name }).from(environments)).map((e) => e.name);
    expect(names.filter((name) => name.startsWith("pr-99"))).toEqual([]);
  });

  it("on GitLab: an update of the target branch moves the preview, an update of the title changes nothing", async () => {
    const [opened] = (await pullRequestOutcome("gitlab", "Merge Request Hook", fixturePayload("gitlab", "merge-request-open"))).previews;
    expect(opened).toMatchObject({ blueprintEnvironmentId: env.gl, name: "pr-1", created: true });
    /** The documented `update` delivery without new commits (no `oldrev`), with `changes`. */
    const update = (target: string, changes: Record<string, unknown>) => {
      const payload = fixturePayload("gitlab", "merge-request-update");
      const attributes = payload.object_attributes as Record<string, unknown>;
      delete attributes.oldrev;
      attributes.target_branch = target;
      (attributes.last_commit as { id: string }).id = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
      payload.changes = { ...(payload.changes as object), ...changes };
      return payload;
    };

    const retitled = await pullRequestOutcome("gitlab", "Merge Request Hook", update("master", { title: { previous: "MS-Viewport", current: "Viewport" } }));
    expect(retitled).toMatchObject({ previews: [], skipped: "no change to previews" });
    expect(await deploymentsOf(opened!.environmentId)).toHaveLength(1);

    const outcome = await pullRequestOutcome("gitlab", "Merge Request Hook", update("develop", { target_branch: { previous: "master", current: "develop" } }));
    expect(outcome).toMatchObject({ action: "retargeted", baseBranch: "develop" });
    await expectMoved(
      outcome,
      { blueprint: env.gl!, environmentId: opened!.environmentId },
      { blueprint: env["gl-next"]!, name: "pr-1-gl-next" },
      "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    );
    expect(await openPreviewBlueprints(GITLAB_REPO, 1)).toEqual([env["gl-next"]]);

    const closed = fixturePayload("gitlab", "merge-request-close");
    (closed.object_attributes as Record<string, unknown>).target_branch = "develop";
    expect((await pullRequestOutcome("gitlab", "Merge Request Hook", closed)).previews).toMatchObject([
      { blueprintEnvironmentId: env["gl-next"], deleted: true },
    ]);
    expect(await openPreviewBlueprints(GITLAB_REPO, 1)).toEqual([]);
  });

  it("on Bitbucket: an update naming another destination branch moves the preview; one naming the same keeps it, its blueprint disabled or not", async () => {
    const [opened] = (await pullRequestOutcome("bitbucket", "pullrequest:created", fixturePayload("bitbucket", "pullrequest-created"))).previews;
    expect(opened).toMatchObject({ blueprintEnvironmentId: env.bb, created: true });
    const updated = (destination: string) => {
      const payload = fixturePayload("bitbucket", "pullrequest-updated");
      (payload.pullrequest as { destination: { branch: { name: string } } }).destination.branch.name = destination;
      return payload;
    };

    // An update of the same destination (a new commit, a new title: Bitbucket does not say which)
    // keeps the preview, also when its blueprint makes no new previews since.
    await developer().git.setPreviewBlueprint({ environmentId: env.bb!, enabled: false });
    try {
      expect((await pullRequestOutcome("bitbucket", "pullrequest:updated", updated("master"))).previews).toEqual([]);
      expect(await openPreviewBlueprints(BITBUCKET_REPO, 1)).toEqual([env.bb]);
    } finally {
      await developer().git.setPreviewBlueprint({ environmentId: env.bb!, enabled: true });
    }

    const outcome = await pullRequestOutcome("bitbucket", "pullrequest:updated", updated("develop"));
    await expectMoved(
      outcome,
      { blueprint: env.bb!, environmentId: opened!.environmentId },
      { blueprint: env["bb-next"]!, name: "pr-1-bb-next" },
      "8e9f2c1a7b3d",
    );
    expect(await openPreviewBlueprints(BITBUCKET_REPO, 1)).toEqual([env["bb-next"]]);

    const declined = fixturePayload("bitbucket", "pullrequest-rejected");
    (declined.pullrequest as { destination: { branch: { name: string } } }).destination.branch.name = "develop";
    expect((await pullRequestOutcome("bitbucket", "pullrequest:rejected", declined)).previews).toMatchObject([
      { blueprintEnvironmentId: env["bb-next"], deleted: true },
    ]);
  });

  it("with the generic hook's `retargeted`", async () => {
    const pullRequest = (action: string, baseBranch: string) => ({
      action,
      number: 5,
      repository: "https://git.example.com/team/plain.git",
      baseBranch,
      headBranch: "feature",
      headCommit: "a".repeat(40),
    });
    const [opened] = (await pullRequestOutcome("generic", "pull_request", pullRequest("opened", "main"))).previews;
    expect(opened).toMatchObject({ blueprintEnvironmentId: env.main, name: "pr-5", created: true });
    const outcome = await pullRequestOutcome("generic", "pull_request", pullRequest("retargeted", "develop"));
    expect(outcome).toMatchObject({ action: "retargeted", baseBranch: "develop" });
    await expectMoved(outcome, { blueprint: env.main!, environmentId: opened!.environmentId }, { blueprint: env.next!, name: "pr-5-next" }, "a".repeat(40));
  });
});
