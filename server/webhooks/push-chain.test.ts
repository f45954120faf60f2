/**
 * Pushes redelivered late, for the providers whose payloads carry no time of the push (GitLab,
 * Bitbucket, Gitea's GitHub-shaped push, the generic hook): ordered against the push a service
 * was last deployed from by the `before` → `after` chain of the pushes recorded for the branch
 * (push-order.ts, webhook_pushes), however far back, and bounded per branch and by retention. On
 * a real PostgreSQL, deliveries through the real intake over HTTP, processed by hand
 * (processPendingDeliveries, what the process_webhooks task calls).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { and, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import type { GitProvider } from "../db/schema";
import { deployments, webhookDeliveries, webhookPushes } from "../db/schema";
import { repositoryKey } from "../git/repository-url";
import { applyRetention, defaultRetention } from "../retention/retention";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { deliver, fixturePayload, githubExample } from "../../test/support/webhooks";
import { createWebhookIntake } from "./intake";
import { processPendingDeliveries } from "./process";
import { PUSHES_KEPT_PER_BRANCH, recordPush } from "./push-order";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let server: http.Server;
let intake: ReturnType<typeof createWebhookIntake>;
const hooks = {} as Record<GitProvider, { id: string; url: string; secret: string }>;
let projectId: string;

const admin = () => createCaller({ services, actor: org.as("ADMIN") });
const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });

type PushOutcome = { deployments: { deploymentId: string; serviceIds: string[] }[]; skipped: { serviceId: string; reason: string }[]; reason?: string };

const commit = (digit: number) => String(digit).repeat(40);
const [C1, C2, C3, C4, C5] = [1, 2, 3, 4, 5].map(commit) as [string, string, string, string, string];

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "chain");
  intake = createWebhookIntake(services, { cacheMs: 0 });
  server = http.createServer((req, res) => void intake.handle(req, res).then((handled) => handled || res.writeHead(404).end()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  services = { ...services, publicUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  for (const provider of ["github", "gitlab", "bitbucket", "generic"] as const) {
    const { connection, secret } = await admin().git.connect({ provider, name: provider });
    hooks[provider] = { id: connection.id, url: connection.webhookUrl, secret };
  }
  projectId = (await developer().projects.create({ name: "chain" })).id;
}, 60_000);

afterAll(async () => {
  await intake?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

/**
 * A push of master from `before` to `after` in repository `name`, as each provider sends it (its
 * fixture, or GitHub's example), and the URL a service follows the repository by.
 */
const providers = {
  gitlab: (name: string) => ({
    provider: "gitlab" as const,
    event: "Push Hook",
    repository: `http://example.com/mike/${name}.git`,
    payload(before: string, after: string) {
      const payload = fixturePayload("gitlab", "push-hook");
      const project = payload.project as Record<string, unknown>;
      Object.assign(project, { git_http_url: this.repository, git_ssh_url: `git@example.com:mike/${name}.git`, web_url: `http://example.com/mike/${name}` });
      (payload.commits as { id: string }[]).at(-1)!.id = after;
      return { ...payload, before, after, checkout_sha: after };
    },
  }),
  bitbucket: (name: string) => ({
    provider: "bitbucket" as const,
    event: "repo:push",
    repository: `https://bitbucket.org/team_name/${name}`,
    payload(before: string, after: string) {
      const payload = fixturePayload("bitbucket", "repo-push");
      const repository = payload.repository as { full_name: string; links: { html: { href: string } } };
      repository.full_name = `team_name/${name}`;
      repository.links.html.href = this.repository;
      const [change] = (payload.push as { changes: { new: { target: { hash: string } }; old: { target: { hash: string } } }[] }).changes;
      change!.new.target.hash = after;
      change!.old.target.hash = before;
      return payload;
    },
  }),
  // Gitea and Forgejo send GitHub's push shape without `repository.pushed_at`.
  gitea: (name: string) => ({
    provider: "github" as const,
    event: "push",
    repository: `https://github.com/Codertocat/${name}`,
    payload(before: string, after: string) {
      const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
      const repository = payload.repository as Record<string, unknown>;
      repository.clone_url = `${this.repository}.git`;
      for (const field of ["ssh_url", "git_url", "html_url", "pushed_at"]) delete repository[field];
      (payload.head_commit as Record<string, unknown>).id = after;
      return { ...payload, before, after };
    },
  }),
  generic: (name: string) => ({
    provider: "generic" as const,
    event: "push",
    repository: `https://git.example.com/team/${name}.git`,
    payload(before: string, after: string): Record<string, unknown> {
      return { repository: this.repository, ref: "refs/heads/master", before, commit: after };
    },
  }),
};

type Sender = ReturnType<(typeof providers)[keyof typeof providers]>;

/** Sends a push through the intake, processes everything pending, and returns what the push did. */
async function push(sender: Sender, before: string, after: string): Promise<PushOutcome & { deliveryId: string }> {
  const { provider, event } = sender;
  const sent = await deliver(hooks[provider].url, { provider, secret: hooks[provider].secret, event, payload: sender.payload(before, after) });
  expect(sent.body.status, JSON.stringify(sent.body)).toBe("queued");
  await processPendingDeliveries(services);
  const [row] = await services.db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.id, sent.body.id as string));
  expect(row!.status, row!.error ?? "").toBe("PROCESSED");
  return { ...(row!.outcome as { events: PushOutcome[] }).events[0]!, deliveryId: row!.id };
}

const deployedServices = (outcome: PushOutcome) => outcome.deployments.flatMap((d) => d.serviceIds);

async function serviceFollowing(environment: string, url: string, triggers?: { includePaths: string[] }) {
  const environmentId = (await developer().environments.create({ projectId, name: environment })).id;
  const { id } = await developer().services.create({ environmentId, name: "web", config: { git: { url, ref: { branch: "master" } } } });
  if (triggers) await developer().services.setGitTriggers({ serviceId: id, autoDeploy: true, includePaths: triggers.includePaths });
  return id;
}

/** The commit the service's latest deployment is pinned at. */
async function pinnedCommit(serviceId: string) {
  const rows = await services.db
    .select()
    .from(deployments)
    .orderBy(sql`${deployments.createdAt} desc`);
  const latest = rows.find((row) => row.serviceIds?.includes(serviceId));
  const service = latest?.snapshot.services.find((s) => s.id === serviceId);
  return service?.kind === "APPLICATION" && service.config.git.ref && "commit" in service.config.git.ref ? service.config.git.ref.commit : null;
}

describe("pushes redelivered late, without a time of the push", () => {
  it.each(Object.keys(providers) as (keyof typeof providers)[])(
    "%s: a push two or more back is older; a force push back to an older commit is newer, and the pushes it rolled back stay rolled back",
    async (name) => {
      const sender = providers[name]("depth");
      const serviceId = await serviceFollowing(`any-depth-${name}`, sender.repository);
      for (const [before, after] of [
        ["0".repeat(40), C1],
        [C1, C2],
        [C2, C3],
        [C3, C4],
      ]) {
        expect(deployedServices(await push(sender, before!, after!))).toEqual([serviceId]);
      }

      // Redelivered by hand after an outage: two and three pushes back.
      for (const [before, after] of [
        [C2, C3],
        [C1, C2],
      ]) {
        const late = await push(sender, before!, after!);
        expect(late.deployments).toEqual([]);
        expect(late.skipped).toEqual([{ serviceId, reason: "an older push than the one it was deployed from (4444444)" }]);
        expect((await admin().git.delivery({ deliveryId: late.deliveryId })).summary).toMatch(
          /an older push than the one already deployed from the branch \(4444444\): not deployed$/,
        );
      }
      expect(await pinnedCommit(serviceId)).toBe(C4);

      // A rollback: the branch force-pushed from C4 back to C2, a commit it was at two pushes ago.
      expect(deployedServices(await push(sender, C4, C2))).toEqual([serviceId]);
      expect(await pinnedCommit(serviceId)).toBe(C2);
      // The pushes it rolled back, redelivered, do not undo it.
      expect((await push(sender, C3, C4)).deployments).toEqual([]);
      expect((await push(sender, C2, C3)).deployments).toEqual([]);
      expect(await pinnedCommit(serviceId)).toBe(C2);
      // A new push from there deploys.
      expect(deployedServices(await push(sender, C2, C5))).toEqual([serviceId]);
    },
  );

  it("orders the pushes an outage lost when they are redelivered newest first", async () => {
    const sender = providers.gitlab("outage");
    const serviceId = await serviceFollowing("outage", sender.repository);
    expect(deployedServices(await push(sender, C1, C2))).toEqual([serviceId]);
    // C2 → C3, C3 → C4 and C4 → C5 were lost; the newest is redelivered first, and deploys.
    expect(deployedServices(await push(sender, C4, C5))).toEqual([serviceId]);
    // Then the others: none is recorded behind C5, yet each is older than the one redelivered before it.
    expect((await push(sender, C3, C4)).deployments).toEqual([]);
    expect((await push(sender, C2, C3)).deployments).toEqual([]);
    expect(await pinnedCommit(serviceId)).toBe(C5);
    // A force push to C3 from a commit the branch was never recorded at is a new push: it deploys.
    expect(deployedServices(await push(sender, "6".repeat(40), C3))).toEqual([serviceId]);
  });

  it("orders against the pushes recorded for the branch, not the stored deliveries", async () => {
    const sender = providers.bitbucket("no-deliveries");
    const serviceId = await serviceFollowing("no-deliveries", sender.repository);
    for (const [before, after] of [
      [C1, C2],
      [C2, C3],
      [C3, C4],
    ]) {
      await push(sender, before!, after!);
    }
    // Deliveries are what retention deletes first, and what a lookup must not read all of.
    await services.db.delete(webhookDeliveries).where(eq(webhookDeliveries.connectionId, hooks.bitbucket.id));
    expect((await push(sender, C1, C2)).skipped).toEqual([{ serviceId, reason: "an older push than the one it was deployed from (4444444)" }]);
  });
});

describe("the pushes kept", () => {
  const branchRows = (connectionId: string, repository: string) =>
    services.db
      .select()
      .from(webhookPushes)
      .where(and(eq(webhookPushes.connectionId, connectionId), eq(webhookPushes.repository, repository), eq(webhookPushes.branch, "master")))
      .orderBy(webhookPushes.seq);

  it(`keeps a branch's newest ${PUSHES_KEPT_PER_BRANCH} pushes and each service's last deployed one`, async () => {
    const sender = providers.generic("rare");
    const repository = repositoryKey(sender.repository)!;
    // Deploys only for changes under docs/: the first push below, and none of the others.
    const rare = await serviceFollowing("rare", sender.repository, { includePaths: ["docs/**"] });
    const sent = await deliver(hooks.generic.url, {
      provider: "generic",
      secret: hooks.generic.secret,
      event: "push",
      payload: { repository: sender.repository, ref: "refs/heads/master", before: "a".repeat(40), commit: "b".repeat(40), changedFiles: ["docs/a.md"] },
    });
    expect(sent.status).toBe(202);
    await processPendingDeliveries(services);
    const key = { connectionId: hooks.generic.id, repository, branch: "master" };
    const hex = (n: number) => n.toString(16).padStart(40, "c");
    for (let n = 0; n < PUSHES_KEPT_PER_BRANCH + 20; n++) {
      await recordPush(services.db, key, { before: n === 0 ? "b".repeat(40) : hex(n - 1), commit: hex(n), pushedAt: null }, []);
    }

    const kept = await branchRows(hooks.generic.id, repository);
    expect(kept).toHaveLength(PUSHES_KEPT_PER_BRANCH + 1);
    expect(kept[0]).toMatchObject({ after: "b".repeat(40), serviceIds: [rare] });
    expect(kept.at(-1)!.after).toBe(hex(PUSHES_KEPT_PER_BRANCH + 19));
    // Its last deployed push still orders what comes after it: the push before it is older.
    const late = await push(sender, "9".repeat(40), "a".repeat(40));
    expect(late.skipped).toContainEqual({ serviceId: rare, reason: "an older push than the one it was deployed from (bbbbbbb)" });
  });

  it("goes with retention, after the webhook deliveries' period", async () => {
    const key = { connectionId: hooks.gitlab.id, repository: "example.com/retained", branch: "master" };
    await recordPush(services.db, key, { before: C1, commit: C2, pushedAt: null }, []);
    await recordPush(services.db, key, { before: C2, commit: C3, pushedAt: null }, []);
    const days = defaultRetention.webhookDays;
    await services.db.execute(
      sql`update webhook_pushes set created_at = now() - make_interval(days => ${days + 1}) where repository = ${key.repository} and after = ${C2}`,
    );

    const outcome = await applyRetention(services.db, defaultRetention, new Date(), { batchSize: 100, pauseMs: 0 });
    expect(outcome.webhookPushes.deleted).toBe(1);
    expect((await branchRows(key.connectionId, key.repository)).map((row) => row.after)).toEqual([C3]);
  });
});
