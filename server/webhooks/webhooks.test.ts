/**
 * The webhook gateway on a real PostgreSQL: the intake over real HTTP, graphile-worker running
 * process_webhooks and report_git_status, the API through createCaller. No engine: deployments
 * are checked as requested (snapshot, refs, origin); test/integration/git.test.ts runs them.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { eq, sql } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments, environments, gitConnections, gitPreviews, organizations, services as servicesTable, webhookDeliveries } from "../db/schema";
import { repositoryKey } from "../git/repository-url";
import { startWorker } from "../../worker/runner";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { gitOf, seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { deliver, eventHeaders, fixturePayload, githubExample, post, startProviderApi } from "../../test/support/webhooks";
import { createWebhookIntake, MAX_DELIVERY_BYTES } from "./intake";
import { signatureHeaders } from "./providers";

const logger = pino({ level: "silent" });
const GITHUB_REPO = "git@github.com:Codertocat/Hello-World.git";
const PUSHED = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let worker: Runner;
let server: http.Server;
let intake: ReturnType<typeof createWebhookIntake>;
let baseUrl: string;
let providerApi: Awaited<ReturnType<typeof startProviderApi>>;
const hooks: Record<"github" | "gitlab" | "bitbucket" | "generic", { id: string; url: string; secret: string }> = {} as never;
let projectId: string;
const env: Record<string, string> = {};
const svc: Record<string, string> = {};

const admin = () => createCaller({ services, actor: org.as("ADMIN") });
const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });

/** The stored delivery once the worker has processed it. */
async function settled(id: string) {
  return eventually(
    async () => {
      const [row] = await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
      return row && row.status !== "PENDING" ? row : undefined;
    },
    15_000,
    `delivery ${id} to be processed`,
  );
}

async function send(provider: keyof typeof hooks, event: string, payload: unknown, deliveryId?: string) {
  const sent = await deliver(hooks[provider].url, { provider, secret: hooks[provider].secret, event, payload, deliveryId });
  expect(sent.status, JSON.stringify(sent.body)).toBe(202);
  return sent;
}

async function sendAndSettle(provider: keyof typeof hooks, event: string, payload: unknown) {
  const sent = await send(provider, event, payload);
  expect(sent.body.status).toBe("queued");
  return settled(sent.body.id as string);
}

type Outcome = {
  events: {
    deployments?: { deploymentId: string; serviceIds: string[]; environmentId: string }[];
    skipped?: { serviceId: string; reason: string }[];
    reason?: string;
    changedFilesUnknown?: string;
    previews?: { environmentId: string; name: string; created: boolean; deploymentId: string | null; deleted: boolean }[];
  }[];
};
const outcomeOf = (row: { outcome: unknown }) => row.outcome as Outcome;

async function deploymentRow(id: string) {
  const [row] = await services.db.select().from(deployments).where(eq(deployments.id, id));
  return row!;
}

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "hooks");
  providerApi = await startProviderApi();
  intake = createWebhookIntake(services, { logger, cacheMs: 0, rejectFlushMs: 20 });
  server = http.createServer((req, res) => {
    void intake.handle(req, res).then((handled) => handled || res.writeHead(404).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  services = { ...services, publicUrl: baseUrl };
  worker = await startWorker({ services, connectionString: database.url, logger });

  for (const provider of ["github", "gitlab", "bitbucket", "generic"] as const) {
    const { connection, secret } = await admin().git.connect({
      provider,
      name: provider,
      ...(provider === "generic" ? {} : { apiBaseUrl: providerApi.url, apiToken: `token-${provider}` }),
    });
    hooks[provider] = { id: connection.id, url: connection.webhookUrl, secret };
  }

  const project = await developer().projects.create({ name: "shop" });
  projectId = project.id;
  const create = async (environment: string, name: string, url: string, branch = "master") => {
    env[environment] ??= (await developer().environments.create({ projectId, name: environment })).id;
    svc[name] = (await developer().services.create({ environmentId: env[environment]!, name, config: { git: { url, ref: { branch } } } })).id;
  };
  await create("dev", "web", GITHUB_REPO);
  await create("dev", "api", "https://github.com/codertocat/hello-world");
  await create("dev", "pages", GITHUB_REPO, "gh-pages");
  await create("dev", "other", "https://github.com/Codertocat/Another.git");
  await create("release", "tagged", "https://github.com/Codertocat/Hello-World");
  await create("gl", "diaspora", "http://example.com/mike/diaspora.git");
  await create("bb", "repo", "git@bitbucket.org:team_name/repo_name.git");
  await create("generic", "plain", "https://git.example.com/team/plain.git", "main");
  await developer().services.setGitTriggers({ serviceId: svc.api!, autoDeploy: true, includePaths: ["api/**"], excludePaths: [] });
  await developer().services.setGitTriggers({ serviceId: svc.tagged!, autoDeploy: false, includePaths: [], excludePaths: [], followTags: true });
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await intake?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await providerApi?.close();
});

describe("connections", () => {
  it("returns the webhook URL and the secret once, keeps both secret and token encrypted, and needs ADMIN", async () => {
    const listed = await admin().git.list({});
    expect(listed.map((c) => c.provider).sort()).toEqual(["bitbucket", "generic", "github", "gitlab"]);
    expect(JSON.stringify(listed)).not.toContain(hooks.github.secret);
    expect(listed.find((c) => c.provider === "github")).toMatchObject({ webhookUrl: `${baseUrl}/api/hooks/${hooks.github.id}`, hasApiToken: true });
    const [row] = await services.db.select().from(gitConnections).where(eq(gitConnections.id, hooks.github.id));
    expect(row!.encryptedSecret).not.toContain(hooks.github.secret);
    expect(row!.encryptedApiToken).not.toContain("token-github");
    await expect(developer().git.connect({ provider: "github", name: "mine" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(developer().git.list({})).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(admin().git.connect({ provider: "gitlab", name: "github" })).rejects.toMatchObject({ code: "CONFLICT" });
  });

  it("rotates the secret: the old one is refused from then on", async () => {
    const { connection, secret } = await admin().git.connect({ provider: "generic", name: "rotating" });
    const payload = { repository: "https://git.example.com/none.git", ref: "refs/heads/main", commit: PUSHED };
    expect((await deliver(connection.webhookUrl, { provider: "generic", secret, event: "push", payload })).status).toBe(202);
    const rotated = await admin().git.rotateSecret({ connectionId: connection.id });
    expect(rotated.secret).not.toBe(secret);
    expect((await deliver(connection.webhookUrl, { provider: "generic", secret, event: "push", payload })).status).toBe(401);
    expect((await deliver(connection.webhookUrl, { provider: "generic", secret: rotated.secret, event: "push", payload })).status).toBe(202);
    await admin().git.delete({ connectionId: connection.id });
    expect((await deliver(connection.webhookUrl, { provider: "generic", secret: rotated.secret, event: "push", payload })).status).toBe(404);
  });

  it("refuses a delivery signed with a rotated secret at once, though the intake caches connections and hears of no rotation", async () => {
    // Another web process's view: connections cached for ten minutes, no notification listener.
    const caching = createWebhookIntake(services, { logger, cacheMs: 600_000, rereadOnRefusalMs: 0 });
    const other = http.createServer((req, res) => void caching.handle(req, res).then((handled) => handled || res.writeHead(404).end()));
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const url = (id: string) => `http://127.0.0.1:${(other.address() as AddressInfo).port}/api/hooks/${id}`;
    try {
      const { connection, secret } = await admin().git.connect({ provider: "generic", name: "rotated-while-cached" });
      const payload = { repository: "https://git.example.com/none.git", ref: "refs/heads/main", commit: PUSHED };
      const sent = (signedWith: string, deliveryId: string) =>
        deliver(url(connection.id), { provider: "generic", secret: signedWith, event: "push", payload, deliveryId });
      expect((await sent(secret, "before")).status).toBe(202);

      const rotated = await admin().git.rotateSecret({ connectionId: connection.id });
      // The cached copy still holds the old secret; the insert finds it rotated away.
      expect((await sent(secret, "old-secret")).status).toBe(401);
      expect((await sent(rotated.secret, "new-secret")).status).toBe(202);

      // And the other way round: the new secret first, refused by the cached copy, checked against the current one.
      const again = await admin().git.rotateSecret({ connectionId: connection.id });
      expect((await sent(again.secret, "newest-secret")).status).toBe(202);
      expect((await sent(rotated.secret, "second-secret")).status).toBe(401);

      const stored = await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.connectionId, connection.id));
      expect(stored.map((row) => row.deliveryId).sort()).toEqual(["before", "new-secret", "newest-secret"]);
      // Closing writes the count of refused deliveries.
      await caching.close();
      const [row] = await services.db.select().from(gitConnections).where(eq(gitConnections.id, connection.id));
      expect(row!.rejectedDeliveries).toBe(2);

      // A deleted connection answers 404 whatever the cache holds.
      await admin().git.delete({ connectionId: connection.id });
      expect((await sent(again.secret, "after-delete")).status).toBe(404);
    } finally {
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it("deletes a connection's deliveries with it, and an organization's with the organization", async () => {
    const storedFor = async (connectionId: string) =>
      (await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.connectionId, connectionId))).length;
    const payload = { repository: "https://git.example.com/none.git", ref: "refs/heads/main", commit: PUSHED };
    const doomed = await seedOrganization(services, "doomed");
    const owner = createCaller({ services, actor: doomed.as("ADMIN") });
    const viaConnection = await owner.git.connect({ provider: "generic", name: "one" });
    const viaOrganization = await owner.git.connect({ provider: "generic", name: "two" });
    for (const { connection, secret } of [viaConnection, viaOrganization]) {
      expect((await deliver(connection.webhookUrl, { provider: "generic", secret, event: "push", payload })).status).toBe(202);
      expect(await storedFor(connection.id)).toBe(1);
    }
    await owner.git.delete({ connectionId: viaConnection.connection.id });
    expect(await storedFor(viaConnection.connection.id)).toBe(0);
    await services.db.delete(organizations).where(eq(organizations.id, doomed.organizationId));
    expect(await storedFor(viaOrganization.connection.id)).toBe(0);
  });
});

describe("push to deploy", () => {
  it("deploys the services that follow the pushed branch of that repository, at the pushed commit, as the sender", async () => {
    const delivery = await sendAndSettle(
      "github",
      "push",
      githubExample("push", (e) => e.ref === "refs/heads/master"),
    );
    expect(delivery.status).toBe("PROCESSED");
    const [pushed] = outcomeOf(delivery).events;
    // `api` only deploys for changes under api/ (the push changed README.md); `tagged` only follows tags;
    // `pages` follows another branch; `other` is another repository.
    expect(pushed!.deployments).toHaveLength(1);
    expect(pushed!.deployments![0]!.serviceIds).toEqual([svc.web]);
    expect(pushed!.skipped).toEqual([
      { serviceId: svc.api, reason: "no changed file passes its path filters" },
      { serviceId: svc.tagged, reason: "auto-deploy is off" },
    ]);
    const deployment = await deploymentRow(pushed!.deployments![0]!.deploymentId);
    expect(deployment).toMatchObject({ origin: "WEBHOOK", actorLabel: "github:Codertocat", action: "DEPLOY", serviceIds: [svc.web] });
    expect(deployment.snapshot.services.map((s) => [s.name, s.kind === "APPLICATION" ? s.config.git.ref : null])).toEqual([["web", { commit: PUSHED }]]);
    // The service's own configuration still follows the branch.
    expect(gitOf(await developer().services.get({ serviceId: svc.web! })).ref).toEqual({ branch: "master" });
  });

  it("deploys a path-filtered service when a changed file matches", async () => {
    const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
    (payload.commits as { added: string[] }[])[0]!.added = ["api/server.js"];
    const [pushed] = outcomeOf(await sendAndSettle("github", "push", payload)).events;
    expect(pushed!.deployments!.flatMap((d) => d.serviceIds).sort()).toEqual([svc.api, svc.web].sort());
  });

  it("asks the provider for the files a push does not list, with the connection's token, and deploys when it cannot say", async () => {
    const filterTo = (serviceId: string, includePaths: string[]) =>
      developer().services.setGitTriggers({ serviceId, autoDeploy: true, includePaths, excludePaths: [] });
    const deployed = (pushed: Outcome["events"][number]) => pushed.deployments!.flatMap((d) => d.serviceIds);
    await filterTo(svc.repo!, ["api/**"]);
    await filterTo(svc.diaspora!, ["api/**"]);
    try {
      // Bitbucket never lists them: its diffstat from the previous commit, page by page.
      const diffstat = "/repositories/team_name/repo_name/diffstat/709d658dc5b6d6afcd46049c2f332ee3f515a67d..1e65c05c1d5171631d92438a13901ca7dae9618c";
      providerApi.answer = (call) =>
        call.path.startsWith(diffstat) ? { status: 200, body: { values: [{ old: null, new: { path: "docs/readme.md" } }] } } : undefined;
      const docs = outcomeOf(await sendAndSettle("bitbucket", "repo:push", fixturePayload("bitbucket", "repo-push"))).events[0]!;
      expect(docs.skipped).toContainEqual({ serviceId: svc.repo, reason: "no changed file passes its path filters" });
      const asked = providerApi.calls.filter((c) => c.path.startsWith(diffstat));
      expect(asked.map((c) => [c.method, c.path, c.headers.authorization])).toEqual([["GET", `${diffstat}?pagelen=500`, "Bearer token-bitbucket"]]);
      providerApi.answer = (call) => {
        if (!call.path.startsWith(diffstat)) return undefined;
        return call.path.includes("page=2")
          ? { status: 200, body: { values: [{ old: { path: "app/server.js" }, new: { path: "api/server.js" } }] } }
          : { status: 200, body: { values: [{ old: null, new: { path: "docs/readme.md" } }], next: `${providerApi.url}${diffstat}?pagelen=500&page=2` } };
      };
      expect(deployed(outcomeOf(await sendAndSettle("bitbucket", "repo:push", fixturePayload("bitbucket", "repo-push"))).events[0]!)).toEqual([svc.repo]);

      // GitHub lists at most 20 commits: beyond that, its compare API.
      const before = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
      const manyCommits = (previous = before) => {
        const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
        const commits = payload.commits as unknown[];
        payload.commits = Array.from({ length: 20 }, () => structuredClone(commits[0]));
        payload.before = previous;
        return payload;
      };
      const compare = `/repos/Codertocat/Hello-World/compare/${before}...${PUSHED}`;
      providerApi.answer = (call) =>
        call.path === compare ? { status: 200, body: { files: [{ filename: "api/index.js", previous_filename: "index.js" }] } } : undefined;
      expect(deployed(outcomeOf(await sendAndSettle("github", "push", manyCommits())).events[0]!).sort()).toEqual([svc.api, svc.web].sort());
      expect(providerApi.calls.find((c) => c.path === compare)!.headers.authorization).toBe("Bearer token-github");

      // GitLab says how many commits there were; its compare API when it listed fewer.
      const gitlabCompare = "/projects/15/repository/compare?from=95790bf891e76fee5e1747ab589903a6a1f80f22&to=da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
      providerApi.answer = (call) =>
        call.path === gitlabCompare ? { status: 200, body: { diffs: [{ old_path: "README.md", new_path: "README.md" }] } } : undefined;
      const gitlabPush = { ...fixturePayload("gitlab", "push-hook"), total_commits_count: 30 };
      const readme = outcomeOf(await sendAndSettle("gitlab", "Push Hook", gitlabPush)).events[0]!;
      expect(readme.skipped).toContainEqual({ serviceId: svc.diaspora, reason: "no changed file passes its path filters" });
      expect(providerApi.calls.find((c) => c.path === gitlabCompare)!.headers["private-token"]).toBe("token-gitlab");

      // When the provider cannot answer, the files are unknown: the service deploys, and the outcome says why.
      providerApi.answer = (call) => (call.path === compare ? { status: 502, body: { message: "upstream down" } } : undefined);
      const failed = await sendAndSettle("github", "push", manyCommits());
      const unknown = outcomeOf(failed).events[0]!;
      expect(deployed(unknown).sort()).toEqual([svc.api, svc.web].sort());
      expect(unknown.changedFilesUnknown).toMatch(/502/);
      expect((await admin().git.delivery({ deliveryId: failed.id })).summary).toMatch(
        /: 1 deployment, 1 skipped \(path filters not applied: github API GET .* 502/,
      );
      // A push that creates its branch has nothing to compare with.
      const created = outcomeOf(await sendAndSettle("github", "push", manyCommits("0".repeat(40)))).events[0]!;
      expect(deployed(created).sort()).toEqual([svc.api, svc.web].sort());
      expect(created.changedFilesUnknown).toBe("the push created the branch");
    } finally {
      providerApi.answer = () => undefined;
      await developer().services.setGitTriggers({ serviceId: svc.repo!, autoDeploy: true, includePaths: [], excludePaths: [] });
      await developer().services.setGitTriggers({ serviceId: svc.diaspora!, autoDeploy: true, includePaths: [], excludePaths: [] });
    }
  });

  it("deploys path-filtered services when a push lists no commits: a force push rewinding the branch, a branch created at a commit it had", async () => {
    await developer().services.setGitTriggers({ serviceId: svc.diaspora!, autoDeploy: true, includePaths: ["api/**"], excludePaths: [] });
    try {
      const deployed = (pushed: Outcome["events"][number]) => pushed.deployments!.flatMap((d) => d.serviceIds).sort();
      // `git push --force origin <older commit>:master`: GitHub lists no commit, and its compare
      // (from the merge base) would list no file either: it is not asked.
      const asked = providerApi.calls.length;
      const rewind = githubExample("push", (e) => e.ref === "refs/heads/master");
      Object.assign(rewind, { before: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", forced: true, commits: [] });
      const rewound = outcomeOf(await sendAndSettle("github", "push", rewind)).events[0]!;
      expect(deployed(rewound)).toEqual([svc.api, svc.web].sort());
      expect(rewound.changedFilesUnknown).toMatch(/without new commits, or by force/);
      expect(providerApi.calls.slice(asked).filter((c) => c.path.includes("/compare/"))).toEqual([]);

      const created = githubExample("push", (e) => e.ref === "refs/heads/master");
      Object.assign(created, { before: "0".repeat(40), created: true, commits: [] });
      expect(deployed(outcomeOf(await sendAndSettle("github", "push", created)).events[0]!)).toEqual([svc.api, svc.web].sort());

      const gitlab = { ...fixturePayload("gitlab", "push-hook"), commits: [], total_commits_count: 0 };
      const gitlabRewound = outcomeOf(await sendAndSettle("gitlab", "Push Hook", gitlab)).events[0]!;
      expect(deployed(gitlabRewound)).toEqual([svc.diaspora]);
      expect(gitlabRewound.changedFilesUnknown).toMatch(/without new commits/);
    } finally {
      await developer().services.setGitTriggers({ serviceId: svc.diaspora!, autoDeploy: true, includePaths: [], excludePaths: [] });
    }
  });

  it("accepts and processes a push of thousands of files, past 1 MiB (GitHub sends up to 25 MB)", async () => {
    const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
    // A regenerated client: GitHub lists every path in the commit and again in head_commit.
    const files = Array.from({ length: 15_000 }, (_, i) => `packages/client/src/generated/models/module-${i}/index.generated.ts`);
    files.push("api/generated/index.ts");
    (payload.commits as { added: string[] }[])[0]!.added = files;
    (payload.head_commit as { added: string[] }).added = files;
    expect(Buffer.byteLength(JSON.stringify(payload))).toBeGreaterThan(2_000_000);
    const [pushed] = outcomeOf(await sendAndSettle("github", "push", payload)).events;
    // `api` deploys only for changes under api/: the last of the 15,001 files was read.
    expect(pushed!.deployments!.flatMap((d) => d.serviceIds).sort()).toEqual([svc.api, svc.web].sort());
  });

  it("follows a repository by any URL the payload names: a service saved with the SSH URL of a GitLab served under a path", async () => {
    // git_http_url and web_url carry the relative URL root (/gitlab), git_ssh_url does not; the
    // service was saved with the HTTP form of the SSH URL's repository.
    const payload = fixturePayload("gitlab", "push-hook");
    Object.assign(payload.project as Record<string, unknown>, {
      git_http_url: "http://example.com/gitlab/mike/diaspora.git",
      web_url: "http://example.com/gitlab/mike/diaspora",
    });
    const pushed = outcomeOf(await sendAndSettle("gitlab", "Push Hook", payload)).events[0]!;
    expect(pushed.deployments!.map((d) => d.serviceIds)).toEqual([[svc.diaspora]]);
  });

  it("takes deliveries for an organization one of whose services has a stray % in its git URL", async () => {
    // Accepted when saved (unchecked); its repository key used to throw, failing every delivery of the organization.
    const stray = await developer().services.create({
      environmentId: env.release!,
      name: "stray-percent",
      config: { git: { url: "https://github.com/Codertocat/Hello-World%", ref: { branch: "master" } } },
    });
    try {
      const delivery = await sendAndSettle(
        "github",
        "push",
        githubExample("push", (e) => e.ref === "refs/heads/master"),
      );
      expect(outcomeOf(delivery).events[0]!.deployments!.map((d) => d.serviceIds)).toEqual([[svc.web]]);
    } finally {
      await services.db.delete(servicesTable).where(eq(servicesTable.id, stray.id));
    }
  });

  it("skips a push whose head commit says [skip deploy]", async () => {
    const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
    (payload.head_commit as { message: string }).message = "Update docs [skip deploy]";
    const [pushed] = outcomeOf(await sendAndSettle("github", "push", payload)).events;
    expect(pushed!.deployments).toEqual([]);
    expect(pushed!.reason).toContain("[skip deploy]");
  });

  it("skips a service saved without a branch, saying why: a delivery does not name the repository's default branch", async () => {
    const environmentId = (await developer().environments.create({ projectId, name: "unpinned" })).id;
    const url = "https://git.example.com/team/unpinned.git";
    // Saved unchecked (these tests' control plane does not check repositories), so no branch is recorded.
    const { id } = await developer().services.create({ environmentId, name: "web", config: { git: { url } } });
    const pushed = outcomeOf(await sendAndSettle("generic", "push", { repository: url, ref: "refs/heads/main", commit: "ABCDEF1234567" })).events[0]!;
    expect(pushed.deployments).toEqual([]);
    expect(pushed.skipped).toEqual([{ serviceId: id, reason: "it follows the repository's default branch, not recorded when it was saved: set its branch" }]);
    await developer().services.update({ serviceId: id, config: { git: { url, ref: { branch: "main" } } } });
    const again = outcomeOf(await sendAndSettle("generic", "push", { repository: url, ref: "refs/heads/main", commit: "ABCDEF1234568" })).events[0]!;
    expect(again.deployments!.map((d) => d.serviceIds)).toEqual([[id]]);
  });

  it("deploys services that follow tags on a tag push, at the tag's commit, and no branch follower", async () => {
    const delivery = await sendAndSettle(
      "github",
      "push",
      githubExample("push", (e) => e.ref === "refs/tags/simple-tag" && e.deleted === false),
    );
    const [pushed] = outcomeOf(delivery).events;
    expect(pushed!.deployments!.map((d) => d.serviceIds)).toEqual([[svc.tagged]]);
    const deployment = await deploymentRow(pushed!.deployments![0]!.deploymentId);
    expect(deployment.snapshot.services[0]!.kind === "APPLICATION" && deployment.snapshot.services[0]!.config.git.ref).toEqual({ commit: PUSHED });
    // A deleted tag deploys nothing.
    const [deleted] = outcomeOf(
      await sendAndSettle(
        "github",
        "push",
        githubExample("push", (e) => e.deleted === true),
      ),
    ).events;
    expect(deleted!.deployments).toEqual([]);
  });

  it("does not deploy a service whose auto-deploy is off", async () => {
    await developer().services.setGitTriggers({ serviceId: svc.web!, autoDeploy: false, includePaths: [], excludePaths: [] });
    try {
      const [pushed] = outcomeOf(
        await sendAndSettle(
          "github",
          "push",
          githubExample("push", (e) => e.ref === "refs/heads/master"),
        ),
      ).events;
      expect(pushed!.deployments).toEqual([]);
      expect(pushed!.skipped).toContainEqual({ serviceId: svc.web, reason: "auto-deploy is off" });
    } finally {
      await developer().services.setGitTriggers({ serviceId: svc.web!, autoDeploy: true, includePaths: [], excludePaths: [] });
    }
    expect(await developer().services.gitTriggers({ serviceId: svc.web! })).toMatchObject({ autoDeploy: true, followTags: false });
  });

  it("deploys from GitLab Push Hooks, Bitbucket repo:push and the generic hook", async () => {
    const gitlab = outcomeOf(await sendAndSettle("gitlab", "Push Hook", fixturePayload("gitlab", "push-hook"))).events[0]!;
    expect(gitlab.deployments!.map((d) => d.serviceIds)).toEqual([[svc.diaspora]]);
    expect((await deploymentRow(gitlab.deployments![0]!.deploymentId)).actorLabel).toBe("gitlab:jsmith");

    const bitbucket = outcomeOf(await sendAndSettle("bitbucket", "repo:push", fixturePayload("bitbucket", "repo-push"))).events[0]!;
    expect(bitbucket.deployments!.map((d) => d.serviceIds)).toEqual([[svc.repo]]);
    const bbDeployment = await deploymentRow(bitbucket.deployments![0]!.deploymentId);
    expect(bbDeployment.snapshot.services[0]!.kind === "APPLICATION" && bbDeployment.snapshot.services[0]!.config.git.ref).toEqual({
      commit: "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
    });

    const generic = outcomeOf(
      await sendAndSettle("generic", "push", {
        repository: "git@git.example.com:team/plain.git",
        ref: "refs/heads/main",
        commit: "ABCDEF1234567",
        actor: "ci",
      }),
    ).events[0]!;
    expect(generic.deployments!.map((d) => d.serviceIds)).toEqual([[svc.plain]]);
    const genericDeployment = await deploymentRow(generic.deployments![0]!.deploymentId);
    expect(genericDeployment.actorLabel).toBe("generic:ci");
    expect(genericDeployment.snapshot.services[0]!.kind === "APPLICATION" && genericDeployment.snapshot.services[0]!.config.git.ref).toEqual({
      commit: "abcdef1234567",
    });
  });

  it("deploys the jobs that follow the pushed branch with the applications, jobs first, at the same commit", async () => {
    const migrate = await developer().services.create({
      environmentId: env.generic!,
      name: "migrate",
      kind: "JOB",
      config: {
        git: { url: "https://git.example.com/team/plain.git", ref: { branch: "main" } },
        command: "npm run migrate",
        trigger: { type: "lifecycle", on: ["start"] },
      },
    });
    try {
      const pushed = outcomeOf(
        await sendAndSettle("generic", "push", {
          repository: "https://git.example.com/team/plain.git",
          ref: "refs/heads/main",
          commit: "1234567abcdef",
          actor: "ci",
        }),
      ).events[0]!;
      expect(pushed.deployments!.map((d) => [...d.serviceIds].sort())).toEqual([[svc.plain, migrate.id].sort()]);
      const row = await deploymentRow(pushed.deployments![0]!.deploymentId);
      expect(
        row.snapshot.services.map((service) => [service.name, service.kind === "APPLICATION" || service.kind === "JOB" ? service.config.git.ref : null]),
      ).toEqual([
        ["migrate", { commit: "1234567abcdef" }],
        ["plain", { commit: "1234567abcdef" }],
      ]);
    } finally {
      await services.db.delete(servicesTable).where(eq(servicesTable.id, migrate.id));
    }
  });

  it("marks an acted-on event whose payload it cannot read FAILED, and goes on with the next", async () => {
    const failed = await sendAndSettle("github", "push", { ref: "refs/heads/master", repository: { full_name: "x/y" } });
    expect(failed.status).toBe("FAILED");
    expect(failed.error).toMatch(/GitHub push payload not understood/);
    const next = await sendAndSettle(
      "github",
      "push",
      githubExample("push", (e) => e.ref === "refs/heads/master"),
    );
    expect(next.status).toBe("PROCESSED");
  });

  it("redelivers a stored delivery: processed again with today's services", async () => {
    const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
    (payload.repository as Record<string, string>).clone_url = "https://github.com/Codertocat/Later.git";
    (payload.repository as Record<string, string>).ssh_url = "git@github.com:Codertocat/Later.git";
    (payload.repository as Record<string, string>).html_url = "https://github.com/Codertocat/Later";
    (payload.repository as Record<string, string>).git_url = "git://github.com/Codertocat/Later.git";
    // No service follows that repository yet: settled by the intake itself, no worker run reads it.
    const sent = await send("github", "push", payload);
    expect(sent.body.status).toBe("unfollowed");
    const first = await admin().git.delivery({ deliveryId: sent.body.id as string });
    expect(first).toMatchObject({ status: "PROCESSED", outcome: { reason: "no service follows this repository", repository: "github.com/codertocat/later" } });
    expect(first.processedAt).not.toBeNull();
    const later = await developer().services.create({
      environmentId: env.release!,
      name: "later",
      config: { git: { url: "https://github.com/codertocat/later", ref: { branch: "master" } } },
    });
    const again = await admin().git.redeliver({ deliveryId: first.id });
    expect(again.status).toBe("PENDING");
    const processed = await eventually(
      async () => {
        const row = await admin().git.delivery({ deliveryId: first.id });
        return row.status === "PROCESSED" && row.outcome ? row : undefined;
      },
      15_000,
      "the redelivery",
    );
    expect((processed.outcome as Outcome).events[0]!.deployments!.map((d) => d.serviceIds)).toEqual([[later.id]]);
    expect(processed.headers["x-github-event"]).toBe("push");
  });
});

describe("bad input", () => {
  const push = () => githubExample("push", (e) => e.ref === "refs/heads/master");
  const countRows = async () => ({
    deliveries: (await services.db.select({ id: webhookDeliveries.id }).from(webhookDeliveries)).length,
    deployments: (await services.db.select({ id: deployments.id }).from(deployments)).length,
  });

  it("refuses forged, truncated, oversized, mistyped and unaddressed deliveries; none is stored or deploys", async () => {
    const before = await countRows();
    const body = JSON.stringify(push());
    const head = (id = randomUUID()): Record<string, string> => ({ "content-type": "application/json", ...eventHeaders("github", "push", id) });
    const url = hooks.github.url;

    // Forged: another secret, no signature, a signature of another body.
    expect((await post(url, body, { ...head(), ...signatureHeaders("github", "not the secret", body) })).status).toBe(401);
    expect((await post(url, body, head())).status).toBe(401);
    expect((await post(url, body, { ...head(), ...signatureHeaders("github", hooks.github.secret, `${body} `) })).status).toBe(401);
    // The secret of another connection of the organization does not open this one.
    expect((await post(url, body, { ...head(), ...signatureHeaders("github", hooks.bitbucket.secret, body) })).status).toBe(401);
    // Truncated: signed over the whole body (401), or over the truncated bytes (400: not JSON).
    const truncated = body.slice(0, body.length / 2);
    expect((await post(url, truncated, { ...head(), ...signatureHeaders("github", hooks.github.secret, body) })).status).toBe(401);
    expect((await post(url, truncated, { ...head(), ...signatureHeaders("github", hooks.github.secret, truncated) })).status).toBe(400);
    // Valid JSON but not an object; a missing delivery id.
    expect((await post(url, "[1,2]", { ...head(), ...signatureHeaders("github", hooks.github.secret, "[1,2]") })).status).toBe(400);
    const { "x-github-delivery": _omitted, ...withoutId } = head();
    expect((await post(url, body, { ...withoutId, ...signatureHeaders("github", hooks.github.secret, body) })).status).toBe(400);
    // Wrong content type (GitHub's form encoding), oversized, unknown connection, not a uuid, not POST.
    expect((await post(url, `payload=${encodeURIComponent(body)}`, { ...head(), "content-type": "application/x-www-form-urlencoded" })).status).toBe(415);
    const big = JSON.stringify({ ...push(), padding: "x".repeat(MAX_DELIVERY_BYTES) });
    expect((await post(url, big, { ...head(), ...signatureHeaders("github", hooks.github.secret, big) })).status).toBe(413);
    expect((await post(`${baseUrl}/api/hooks/${randomUUID()}`, body, { ...head(), ...signatureHeaders("github", hooks.github.secret, body) })).status).toBe(
      404,
    );
    expect((await post(`${baseUrl}/api/hooks/not-a-uuid`, body, head())).status).toBe(404);
    const get = await new Promise<number>((resolve) => http.get(url, (res) => (res.resume(), resolve(res.statusCode ?? 0))));
    expect(get).toBe(405);

    expect(await countRows()).toEqual(before);
    // Refused signatures are counted on the connection, nothing else is kept.
    const counted = await eventually(
      async () => {
        const [github] = (await admin().git.list({})).filter((c) => c.provider === "github");
        return github!.rejectedDeliveries >= 5 ? github : undefined;
      },
      5_000,
      "the refused deliveries to be counted",
    );
    expect(counted.rejectedDeliveries).toBe(5);
    expect(counted.lastRejectedAt).not.toBeNull();
  });

  it("answers 413 to a declared oversized body without reading it", async () => {
    const answer = await new Promise<number>((resolve, reject) => {
      const req = http.request(hooks.github.url, {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", "content-length": String(64 * 1024 * 1024), ...eventHeaders("github", "push", randomUUID()) },
      });
      req.on("response", (res) => (res.resume(), resolve(res.statusCode ?? 0)));
      req.on("error", reject);
      // Only the first bytes of the declared 64 MiB are ever sent.
      req.write("{");
    });
    expect(answer).toBe(413);
  });

  it("answers 413 to a chunked body that grows past the cap", async () => {
    const answer = await new Promise<number>((resolve, reject) => {
      const req = http.request(hooks.github.url, {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", ...eventHeaders("github", "push", randomUUID()) },
      });
      req.on("response", (res) => (res.resume(), resolve(res.statusCode ?? 0)));
      req.on("error", (error) =>
        (error as NodeJS.ErrnoException).code === "EPIPE" || (error as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(error),
      );
      const chunk = "x".repeat(64 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < MAX_DELIVERY_BYTES + 2 * chunk.length) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
    expect(answer).toBe(413);
  });

  it("answers 503 while the bodies being received hold the most it may, and takes deliveries again once they are answered", async () => {
    const bounded = createWebhookIntake(services, { logger, cacheMs: 0, bodiesHeldMaxBytes: 256 * 1024 });
    const boundedServer = http.createServer((req, res) => void bounded.handle(req, res).then((handled) => handled || res.writeHead(404).end()));
    await new Promise<void>((resolve) => boundedServer.listen(0, "127.0.0.1", resolve));
    const hookUrl = `http://127.0.0.1:${(boundedServer.address() as AddressInfo).port}/api/hooks/${hooks.github.id}`;
    try {
      // A slow sender holds 200 kB of a body it has not finished.
      const slow = http.request(hookUrl, {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", ...eventHeaders("github", "push", randomUUID()) },
      });
      const slowAnswer = new Promise<number>((resolve, reject) => {
        slow.on("response", (res) => (res.resume(), resolve(res.statusCode ?? 0)));
        slow.on("error", reject);
      });
      slow.write(`{"padding":"${"x".repeat(200 * 1024)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      // 60 kB more than the 256 kB allowed: sent whole before the answer, as a provider does.
      const large = () => {
        const body = JSON.stringify({ ...push(), padding: "y".repeat(60 * 1024) });
        return post(hookUrl, body, {
          "content-type": "application/json",
          ...eventHeaders("github", "push", randomUUID()),
          ...signatureHeaders("github", hooks.github.secret, body),
        });
      };
      const refused = await large();
      expect(refused).toMatchObject({ status: 503, body: { message: expect.stringContaining("Too many large deliveries") } });
      slow.end('"}');
      expect(await slowAnswer).toBe(401);
      expect((await large()).status).toBe(202);
    } finally {
      await bounded.close();
      boundedServer.closeAllConnections();
      await new Promise((resolve) => boundedServer.close(resolve));
    }
  });

  it("refuses a delivery with a NUL character (400) without failing the deliveries stored beside it", async () => {
    const before = await countRows();
    const nulInUrl = push();
    for (const field of ["clone_url", "ssh_url", "git_url", "html_url"]) {
      const repository = nulInUrl.repository as Record<string, string>;
      repository[field] = repository[field]!.replace("Hello-World", "Hello-World\u0000x");
    }
    const nulInRef = { ...push(), ref: "refs/heads/master\u0000" };
    const beside = { ...push(), head_commit: { ...(push().head_commit as object), message: "[skip deploy] beside a NUL" } };
    // A commit message that quotes the escape holds a backslash, not a NUL.
    const quoting = { ...push(), head_commit: { ...(push().head_commit as object), message: "[skip deploy] Refuse \\u0000 in names" } };
    const sent = (payload: unknown) => deliver(hooks.github.url, { provider: "github", secret: hooks.github.secret, event: "push", payload });
    // Half a surrogate pair: jsonb refuses it as it refuses a NUL.
    const halfPair = { ...push(), head_commit: { ...(push().head_commit as object), message: "broken \ud83d" } };
    const [url, ref, half, stored, quoted] = await Promise.all([sent(nulInUrl), sent(nulInRef), sent(halfPair), sent(beside), sent(quoting)]);
    expect(url).toMatchObject({ status: 400, body: { message: expect.stringMatching(/NUL character/) } });
    expect(ref.status).toBe(400);
    expect(half.status).toBe(400);
    expect(stored.status).toBe(202);
    expect(quoted.status).toBe(202);
    await settled(stored.body.id as string);
    await settled(quoted.body.id as string);
    expect((await countRows()).deliveries).toBe(before.deliveries + 2);
  });

  it("marks FAILED a stored delivery whose result cannot be stored, and goes on with the next", async () => {
    // Stored before the intake refused NUL characters: its ref, written into its outcome, is refused by jsonb.
    const payload = { ...push(), ref: "refs/heads/master\u0000" };
    const [poisoned] = await services.db
      .insert(webhookDeliveries)
      .values({
        organizationId: org.organizationId,
        connectionId: hooks.github.id,
        deliveryId: randomUUID(),
        event: "push",
        repository: "github.com/codertocat/hello-world",
        headers: eventHeaders("github", "push", "poisoned"),
        payload: JSON.stringify(payload),
      })
      .returning();
    const next = await send("github", "push", { ...push(), head_commit: { ...(push().head_commit as object), message: "[skip deploy] after the poisoned" } });
    expect((await settled(next.body.id as string)).status).toBe("PROCESSED");
    const failed = await settled(poisoned!.id);
    expect(failed.status).toBe("FAILED");
    expect(failed.error).toMatch(/^Its result could not be stored: /);
  });

  it("stores a replayed delivery once and answers it 202 duplicate, also when the replays race", async () => {
    const before = await countRows();
    const id = randomUUID();
    const payload = { ...push(), head_commit: { ...(push().head_commit as object), message: "[skip deploy] replay test" } };
    const first = await send("github", "push", payload, id);
    expect(first.body.status).toBe("queued");
    const replay = await send("github", "push", payload, id);
    expect(replay.body).toEqual({ status: "duplicate" });

    const racing = randomUUID();
    const answers = await Promise.all(Array.from({ length: 8 }, () => send("github", "push", payload, racing)));
    expect(answers.filter((a) => a.body.status === "queued")).toHaveLength(1);
    expect(answers.filter((a) => a.body.status === "duplicate")).toHaveLength(7);
    const stored = await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, racing));
    expect(stored).toHaveLength(1);
    await settled(first.body.id as string);
    await settled(stored[0]!.id);
    expect((await countRows()).deliveries).toBe(before.deliveries + 2);
    expect((await countRows()).deployments).toBe(before.deployments);
  });

  it("stores events it does not act on as ignored, without deploying", async () => {
    const before = await countRows();
    const ping = await send("github", "ping", githubExample("ping"));
    expect(ping.body.status).toBe("ignored");
    const labeled = await send(
      "github",
      "pull_request",
      githubExample("pull_request", (e) => e.action === "labeled"),
    );
    expect(labeled.body.status).toBe("ignored");
    const issue = await send("gitlab", "Issue Hook", { object_kind: "issue" });
    expect(issue.body.status).toBe("ignored");
    const [row] = await services.db
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.id, ping.body.id as string));
    expect(row).toMatchObject({ status: "IGNORED", event: "ping" });
    expect(row!.headers["x-hub-signature-256"]).toMatch(/^sha256=/);
    const gitlabRow = (
      await services.db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.id, issue.body.id as string))
    )[0]!;
    expect(gitlabRow.headers["x-gitlab-token"]).toBeUndefined();
    expect(JSON.stringify(gitlabRow.headers)).not.toContain(hooks.gitlab.secret);
    expect((await countRows()).deployments).toBe(before.deployments);
  });

  it("lists deliveries newest first, page by page", async () => {
    const page = await admin().git.deliveries({ connectionId: hooks.github.id, limit: 3 });
    expect(page).toHaveLength(3);
    expect(page[0]!.seq).toBeGreaterThan(page[1]!.seq);
    const next = await admin().git.deliveries({ connectionId: hooks.github.id, limit: 3, before: page.at(-1)!.seq });
    expect(next[0]!.seq).toBeLessThan(page.at(-1)!.seq);
    await expect(developer().git.deliveries({ connectionId: hooks.github.id, limit: 3 })).rejects.toMatchObject({ code: "FORBIDDEN" });
  });
});

describe("preview environments", () => {
  const pr = (action: string) => githubExample("pull_request", (e) => e.action === action);
  const head = (payload: Record<string, unknown>, sha: string) => ((payload.pull_request as { head: { sha: string } }).head.sha = sha);

  it("clones the blueprint for an opened pull request, follows its commits, reports to the provider, and deletes it when closed", async () => {
    await developer().git.setPreviewBlueprint({ environmentId: env.dev!, enabled: true, lifetimeSeconds: 3600 });
    const opened = await sendAndSettle("github", "pull_request", pr("opened"));
    const [created] = outcomeOf(opened).events[0]!.previews!;
    expect(created).toMatchObject({ name: "pr-2", created: true, deleted: false });
    const previewEnv = await developer().environments.get({ environmentId: created!.environmentId });
    expect(previewEnv).toMatchObject({ name: "pr-2", mode: "PREVIEW", clonedFromId: env.dev });
    const firstExpiry = new Date(previewEnv.expiresAt!).getTime();
    expect(firstExpiry).toBeGreaterThan(Date.now() + 3500_000);

    const previewServices = await developer().services.list({ environmentId: created!.environmentId });
    const byName = Object.fromEntries(previewServices.map((s) => [s.name, s]));
    // Services of the pull request's repository that follow its base branch now follow its head
    // branch; one following another branch of the repository, or another repository, keeps its own.
    expect(gitOf(byName.web!).ref).toEqual({ branch: "changes" });
    expect(gitOf(byName.api!).ref).toEqual({ branch: "changes" });
    expect(gitOf(byName.pages!).ref).toEqual({ branch: "gh-pages" });
    expect(gitOf(byName.other!).ref).toEqual({ branch: "master" });
    const firstDeploy = await deploymentRow(created!.deploymentId!);
    expect(firstDeploy).toMatchObject({ origin: "WEBHOOK", actorLabel: "github:Codertocat", serviceIds: null });
    const refs = Object.fromEntries(firstDeploy.snapshot.services.map((s) => [s.name, s.kind === "APPLICATION" ? s.config.git.ref : null]));
    expect(refs.web).toEqual({ commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821" });
    expect(refs.other).toEqual({ branch: "master" });

    // The provider API (a local server standing in for GitHub) got a pending commit status.
    const status = await eventually(
      () => providerApi.calls.find((c) => c.path === "/repos/Codertocat/Hello-World/statuses/ec26c3e57ca3a959ca5aad62de7213c562f8c821"),
      10_000,
      "the commit status",
    );
    expect(status.method).toBe("POST");
    expect(status.headers.authorization).toBe("Bearer token-github");
    expect(status.body).toMatchObject({ state: "pending", context: "slipway/preview", target_url: "http://web-pr-2-shop.localhost" });

    // A pushed forward preview is not deployed by the push: its pull request's events drive it.
    const sync = pr("synchronize");
    head(sync, "0123456789abcdef0123456789abcdef01234567");
    const synced = outcomeOf(await sendAndSettle("github", "pull_request", sync)).events[0]!.previews![0]!;
    expect(synced).toMatchObject({ environmentId: created!.environmentId, created: false });
    const syncDeploy = await deploymentRow(synced.deploymentId!);
    expect([...syncDeploy.serviceIds!].sort()).toEqual([byName.web!.id, byName.api!.id].sort());
    expect(
      syncDeploy.snapshot.services.every(
        (s) =>
          s.kind === "APPLICATION" &&
          s.config.git.ref &&
          "commit" in s.config.git.ref &&
          s.config.git.ref.commit === "0123456789abcdef0123456789abcdef01234567",
      ),
    ).toBe(true);
    const later = new Date((await developer().environments.get({ environmentId: created!.environmentId })).expiresAt!).getTime();
    expect(later).toBeGreaterThan(firstExpiry);
    expect((await developer().git.previews({ environmentId: env.dev! }))[0]).toMatchObject({
      number: 2,
      headCommit: "0123456789abcdef0123456789abcdef01234567",
      environmentName: "pr-2",
    });

    const closed = pr("closed");
    (closed.pull_request as Record<string, unknown>).merged = true;
    const gone = outcomeOf(await sendAndSettle("github", "pull_request", closed)).events[0]!.previews![0]!;
    expect(gone).toMatchObject({ environmentId: created!.environmentId, deleted: true });
    expect((await deploymentRow(gone.deploymentId!)).action).toBe("DELETE");
    expect((await developer().git.previews({ environmentId: env.dev! }))[0]!.closedAt).not.toBeNull();
  });

  it("previews GitLab merge requests and Bitbucket pull requests, and not pull requests from forks", async () => {
    await developer().git.setPreviewBlueprint({ environmentId: env.gl!, enabled: true });
    const gitlab = outcomeOf(await sendAndSettle("gitlab", "Merge Request Hook", fixturePayload("gitlab", "merge-request-open"))).events[0]!.previews![0]!;
    const glServices = await developer().services.list({ environmentId: gitlab.environmentId });
    expect(gitOf(glServices[0]!).ref).toEqual({ branch: "ms-viewport" });
    expect((await developer().environments.get({ environmentId: gitlab.environmentId })).expiresAt).toBeNull();
    await eventually(
      () => providerApi.calls.find((c) => c.path === "/projects/15/statuses/da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),
      10_000,
      "the GitLab status",
    );
    expect(providerApi.calls.find((c) => c.path.startsWith("/projects/15/statuses/"))!.headers["private-token"]).toBe("token-gitlab");
    const updated = outcomeOf(await sendAndSettle("gitlab", "Merge Request Hook", fixturePayload("gitlab", "merge-request-update"))).events[0]!.previews![0]!;
    expect(updated).toMatchObject({ environmentId: gitlab.environmentId, created: false });
    const merged = outcomeOf(await sendAndSettle("gitlab", "Merge Request Hook", fixturePayload("gitlab", "merge-request-merge"))).events[0]!.previews![0]!;
    expect(merged.deleted).toBe(true);

    await developer().git.setPreviewBlueprint({ environmentId: env.bb!, enabled: true, lifetimeSeconds: 600 });
    const bitbucket = outcomeOf(await sendAndSettle("bitbucket", "pullrequest:created", fixturePayload("bitbucket", "pullrequest-created"))).events[0]!
      .previews![0]!;
    // `pr-1` is still taken by the GitLab preview (its DELETE waits for an engine): the name says whose it is.
    expect(bitbucket).toMatchObject({ name: "pr-1-bb", created: true });
    const bbDeploy = await deploymentRow(bitbucket.deploymentId!);
    expect(bbDeploy.snapshot.services[0]!.kind === "APPLICATION" && bbDeploy.snapshot.services[0]!.config.git.ref).toEqual({ commit: "d3022fc0ca3d" });
    const declined = outcomeOf(await sendAndSettle("bitbucket", "pullrequest:rejected", fixturePayload("bitbucket", "pullrequest-rejected"))).events[0]!
      .previews![0]!;
    expect(declined.deleted).toBe(true);

    const fork = pr("opened");
    (fork as { number: number }).number = 99;
    const forkHead = (fork.pull_request as { head: { repo: Record<string, unknown> } }).head;
    forkHead.repo = { ...forkHead.repo, full_name: "mallory/Hello-World", clone_url: "https://github.com/mallory/Hello-World.git" };
    const skipped = outcomeOf(await sendAndSettle("github", "pull_request", fork)).events[0]! as { skipped?: string; previews: unknown[] };
    expect(skipped.previews).toEqual([]);
    expect(skipped.skipped).toMatch(/fork/);
    const names = (await services.db.select({ name: environments.name }).from(environments).where(eq(environments.projectId, projectId))).map((e) => e.name);
    expect(names).not.toContain("pr-99");
  });

  /** Pull request `number`'s delivery: the example `action`, against `base`. */
  const numbered = (action: string, number: number, base = "master") => {
    const payload = pr(action);
    payload.number = number;
    (payload.pull_request as { base: { ref: string } }).base.ref = base;
    return payload;
  };
  const previewOf = async (action: string, number: number, base?: string) =>
    outcomeOf(await sendAndSettle("github", "pull_request", numbered(action, number, base))).events[0]!.previews![0]!;
  const previewRow = async (environmentId: string) => (await services.db.select().from(gitPreviews).where(eq(gitPreviews.environmentId, environmentId)))[0]!;

  it("deletes a pull request's preview when it closes after being retargeted to another base branch, or after its blueprint was disabled", async () => {
    await developer().git.setPreviewBlueprint({ environmentId: env.dev!, enabled: true });
    const stacked = await previewOf("opened", 40);
    // Retargeted without Slipway hearing of it (a lost `edited` delivery, or one from before
    // retargets were acted on: preview-retarget.test.ts): the close names the new base, which no
    // blueprint follows.
    const retargeted = await previewOf("closed", 40, "develop");
    expect(retargeted).toMatchObject({ environmentId: stacked.environmentId, deleted: true });
    expect((await deploymentRow(retargeted.deploymentId!)).action).toBe("DELETE");
    expect((await previewRow(stacked.environmentId)).closedAt).not.toBeNull();

    const kept = await previewOf("opened", 41);
    await developer().git.setPreviewBlueprint({ environmentId: env.dev!, enabled: false });
    try {
      const closed = await previewOf("closed", 41);
      expect(closed).toMatchObject({ environmentId: kept.environmentId, deleted: true });
      expect((await deploymentRow(closed.deploymentId!)).action).toBe("DELETE");
      expect((await previewRow(kept.environmentId)).closedAt).not.toBeNull();
    } finally {
      await developer().git.setPreviewBlueprint({ environmentId: env.dev!, enabled: true });
    }
  });

  it("deletes a closed pull request's preview on the retry after requesting its DELETE failed", async () => {
    await developer().git.setPreviewBlueprint({ environmentId: env.dev!, enabled: true });
    const preview = await previewOf("opened", 42);
    // The database refuses this preview's first DELETE once (a sequence is not rolled back with the failed insert).
    await services.db.execute(sql`create sequence delete_failures`);
    await services.db.execute(
      sql.raw(`create function refuse_first_delete() returns trigger language plpgsql as $$
        begin
          if new.action = 'DELETE' and new.environment_id = '${preview.environmentId}' and nextval('delete_failures') = 1 then
            raise exception 'the database failed once';
          end if;
          return new;
        end $$`),
    );
    await services.db.execute(sql`create trigger refuse_first_delete before insert on deployments for each row execute function refuse_first_delete()`);
    try {
      const delivery = await sendAndSettle("github", "pull_request", numbered("closed", 42));
      // It failed once, and the job's retry processed it.
      expect(delivery).toMatchObject({ status: "PROCESSED" });
      expect(delivery.attempts).toBeGreaterThan(1);
      const closed = outcomeOf(delivery).events[0]!.previews![0]!;
      expect(closed).toMatchObject({ environmentId: preview.environmentId, deleted: true });
      expect((await deploymentRow(closed.deploymentId!)).action).toBe("DELETE");
      expect((await previewRow(preview.environmentId)).closedAt).not.toBeNull();
    } finally {
      await services.db.execute(sql`drop trigger refuse_first_delete on deployments`);
      await services.db.execute(sql`drop function refuse_first_delete`);
      await services.db.execute(sql`drop sequence delete_failures`);
    }
  });

  it("takes over the clone a crashed attempt left before recording the preview, and deploys all of it", async () => {
    await developer().git.setPreviewBlueprint({ environmentId: env.dev!, enabled: true });
    // What the crashed attempt committed: the blueprint's clone for pull request 43, recorded as no preview.
    const { environment: orphan } = await developer().environments.clone({ environmentId: env.dev!, name: "pr-43", mode: "PREVIEW" });
    const retried = await previewOf("opened", 43);
    expect(retried).toMatchObject({ environmentId: orphan.id, name: "pr-43", created: true });
    expect((await deploymentRow(retried.deploymentId!)).serviceIds).toBeNull();
    const names = (await services.db.select({ name: environments.name }).from(environments).where(eq(environments.projectId, projectId))).map((e) => e.name);
    expect(names.filter((name) => name.startsWith("pr-43"))).toEqual(["pr-43"]);
    // Its copies of the blueprint's secrets go with the pull request.
    expect(await previewOf("closed", 43)).toMatchObject({ environmentId: orphan.id, deleted: true });
  });

  it("deploys all of a preview a crash left recorded but never deployed, on the retry", async () => {
    await developer().git.setPreviewBlueprint({ environmentId: env.dev!, enabled: true });
    // What the crashed attempt committed: the clone and its record, and no deployment.
    const { environment: clone } = await developer().environments.clone({ environmentId: env.dev!, name: "pr-44", mode: "PREVIEW" });
    await services.db.insert(gitPreviews).values({
      organizationId: org.organizationId,
      blueprintEnvironmentId: env.dev!,
      environmentId: clone.id,
      repository: repositoryKey(GITHUB_REPO)!,
      number: 44,
      headBranch: "changes",
      headCommit: PUSHED,
    });
    const retried = await previewOf("opened", 44);
    expect(retried).toMatchObject({ environmentId: clone.id, created: false });
    const deployment = await deploymentRow(retried.deploymentId!);
    expect(deployment.serviceIds).toBeNull();
    expect(deployment.snapshot.services.map((s) => s.name).sort()).toEqual(["api", "other", "pages", "web"]);
  });

  it("refuses to make a preview a blueprint", async () => {
    const previews = await developer().git.previews({});
    await expect(developer().git.setPreviewBlueprint({ environmentId: previews[0]!.environmentId, enabled: true })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    const blueprints = await services.db.select().from(servicesTable).where(eq(servicesTable.environmentId, env.dev!));
    expect(blueprints.length).toBeGreaterThan(0);
  });
});
