/**
 * The process_webhooks task's work on a real PostgreSQL, driven by hand (processPendingDeliveries,
 * what the task calls) so that each test decides when deliveries are processed: how much of the
 * pending deliveries one batch reads, the order of a push redelivered late against the push a
 * service was deployed from, and pull requests whose head branch git would refuse. Deliveries
 * come in through the real intake over HTTP, signed as their provider signs them.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments, environments, gitPreviews, webhookDeliveries } from "../db/schema";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { gitOf, seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { deliver, eventHeaders, fixturePayload, githubExample } from "../../test/support/webhooks";
import { createWebhookIntake } from "./intake";
import { processPendingDeliveries } from "./process";
import { headBranchProblem } from "./previews";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let server: http.Server;
let intake: ReturnType<typeof createWebhookIntake>;
const hooks: Record<"github" | "gitlab", { id: string; url: string; secret: string }> = {} as never;
let projectId: string;

const admin = () => createCaller({ services, actor: org.as("ADMIN") });
const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });

type PushOutcome = { deployments: { deploymentId: string; serviceIds: string[] }[]; skipped: { serviceId: string; reason: string }[]; reason?: string };

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "pending");
  intake = createWebhookIntake(services, { cacheMs: 0 });
  server = http.createServer((req, res) => void intake.handle(req, res).then((handled) => handled || res.writeHead(404).end()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  services = { ...services, publicUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  for (const provider of ["github", "gitlab"] as const) {
    const { connection, secret } = await admin().git.connect({ provider, name: provider });
    hooks[provider] = { id: connection.id, url: connection.webhookUrl, secret };
  }
  projectId = (await developer().projects.create({ name: "shop" })).id;
}, 60_000);

afterAll(async () => {
  await intake?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

/** Sends the delivery through the intake (queued for the worker), processes everything pending, and returns its row. */
async function deliverAndProcess(provider: "github" | "gitlab", event: string, payload: unknown) {
  const sent = await deliver(hooks[provider].url, { provider, secret: hooks[provider].secret, event, payload });
  expect(sent.body.status, JSON.stringify(sent.body)).toBe("queued");
  await processPendingDeliveries(services);
  const [row] = await services.db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.id, sent.body.id as string));
  expect(row!.status).toBe("PROCESSED");
  return row!;
}

const pushOf = (row: { outcome: unknown }) => (row.outcome as { events: PushOutcome[] }).events[0]!;

async function serviceFollowing(environment: string, name: string, url: string) {
  const environmentId = (await developer().environments.create({ projectId, name: environment })).id;
  const { id } = await developer().services.create({ environmentId, name, config: { git: { url, ref: { branch: "master" } } } });
  return { environmentId, serviceId: id };
}

/** The commit each service of a deployment is pinned at. */
async function pinned(deploymentId: string) {
  const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deploymentId));
  return Object.fromEntries(row!.snapshot.services.map((s) => [s.name, s.kind === "APPLICATION" ? s.config.git.ref : null]));
}

describe("batches", () => {
  it("reads no more payload bytes per batch than its budget, a larger delivery alone, in order", async () => {
    // Pushes of a repository nothing follows, stored with no repository key (as for a GitLab
    // served under a path), so the worker reads each one rather than settling them unread.
    const sizes = [400_000, 400_000, 400_000, 1_500_000, 100_000, 100_000];
    const rows: string[] = [];
    for (const size of sizes) {
      const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
      (payload.repository as Record<string, string>).clone_url = "https://github.com/Codertocat/Elsewhere.git";
      for (const field of ["ssh_url", "git_url", "html_url"]) delete (payload.repository as Record<string, string>)[field];
      const body = JSON.stringify(payload);
      const padded = JSON.stringify({ ...payload, padding: "x".repeat(size - body.length) });
      const [row] = await services.db
        .insert(webhookDeliveries)
        .values({
          organizationId: org.organizationId,
          connectionId: hooks.github.id,
          deliveryId: randomUUID(),
          event: "push",
          repository: null,
          headers: eventHeaders("github", "push", "batch"),
          payload: padded,
        })
        .returning({ id: webhookDeliveries.id });
      rows.push(row!.id);
    }

    expect(await processPendingDeliveries(services, { batchBytes: 1_000_000 })).toBe(sizes.length);

    const processed = await services.db.select().from(webhookDeliveries).where(inArray(webhookDeliveries.id, rows)).orderBy(webhookDeliveries.seq);
    expect(processed.map((row) => [row.status, (row.outcome as { reason?: string }).reason])).toEqual(
      sizes.map(() => ["PROCESSED", "no service follows this repository"]),
    );
    // The deliveries of one batch that deploy nothing are marked together, in one statement: one
    // time per batch. 1.2 MB would have followed the first three; the 1.5 MB one is read alone.
    const batches = [...new Set(processed.map((row) => row.processedAt!.getTime()))].map((time) =>
      processed.filter((row) => row.processedAt!.getTime() === time).map((row) => rows.indexOf(row.id)),
    );
    expect(batches).toEqual([[0, 1, 2], [3], [4, 5]]);
  });
});

describe("pushes delivered out of order", () => {
  const C1 = "1111111111111111111111111111111111111111";
  const C2 = "2222222222222222222222222222222222222222";
  const C3 = "3333333333333333333333333333333333333333";

  /** GitHub's push of master from `before` to `after`, at `pushedAt` (Unix seconds, as GitHub sends it). */
  function githubPush(before: string, after: string, pushedAt: number, forced = false) {
    const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
    (payload.repository as Record<string, unknown>).clone_url = "https://github.com/Codertocat/Ordered.git";
    for (const field of ["ssh_url", "git_url", "html_url"]) delete (payload.repository as Record<string, unknown>)[field];
    (payload.repository as Record<string, unknown>).pushed_at = pushedAt;
    (payload.head_commit as Record<string, unknown>).id = after;
    return { ...payload, before, after, forced };
  }

  it("does not deploy a GitHub push redelivered after a later one deployed, and deploys a force push back to an older commit", async () => {
    const { serviceId } = await serviceFollowing("ordered", "web", "https://github.com/Codertocat/Ordered");
    // Pushed at 10:00 (C1) and 10:05 (C3); the outage lost the first, and the second deployed.
    const later = pushOf(await deliverAndProcess("github", "push", githubPush(C2, C3, 1_700_000_300)));
    expect(later.deployments.map((d) => d.serviceIds)).toEqual([[serviceId]]);

    // GitHub's "Redeliver" of the first: its original payload, under a new delivery id.
    const redelivered = await deliverAndProcess("github", "push", githubPush("0".repeat(40), C1, 1_700_000_000));
    expect(pushOf(redelivered).deployments).toEqual([]);
    expect(pushOf(redelivered).skipped).toEqual([{ serviceId, reason: "an older push than the one it was deployed from (3333333)" }]);
    expect((await admin().git.delivery({ deliveryId: redelivered.id })).summary).toBe(
      "refs/heads/master@1111111: an older push than the one already deployed from the branch (3333333): not deployed",
    );

    // A rollback: C1 force-pushed over C3 at 10:10. Its commit is older, the push is not.
    const rollback = pushOf(await deliverAndProcess("github", "push", githubPush(C3, C1, 1_700_000_600, true)));
    expect(rollback.deployments.map((d) => d.serviceIds)).toEqual([[serviceId]]);
    expect((await pinned(rollback.deployments[0]!.deploymentId)).web).toEqual({ commit: C1 });
    // And the push it rolled back, redelivered, stays rolled back.
    expect(pushOf(await deliverAndProcess("github", "push", githubPush(C2, C3, 1_700_000_300))).deployments).toEqual([]);
    // The same commit again is no older: it deploys (changing nothing).
    expect(pushOf(await deliverAndProcess("github", "push", githubPush(C3, C1, 1_700_000_600, true))).deployments).toHaveLength(1);
  });

  it("orders GitLab pushes, which carry no time of the push, by their before and after commits", async () => {
    const { serviceId } = await serviceFollowing("chained", "diaspora", "http://example.com/mike/diaspora.git");
    const push = (before: string, after: string) => {
      const payload = fixturePayload("gitlab", "push-hook");
      const commits = payload.commits as { id: string }[];
      commits.at(-1)!.id = after;
      return { ...payload, before, after, checkout_sha: after };
    };
    const deployed = async (before: string, after: string) =>
      pushOf(await deliverAndProcess("gitlab", "Push Hook", push(before, after))).deployments.flatMap((d) => d.serviceIds);

    expect(await deployed(C1, C2)).toEqual([serviceId]);
    expect(await deployed(C2, C3)).toEqual([serviceId]);
    // The push C3 moved on from, redelivered: older.
    const late = pushOf(await deliverAndProcess("gitlab", "Push Hook", push(C1, C2)));
    expect(late.deployments).toEqual([]);
    expect(late.reason).toMatch(/older push .* \(3333333\)/);
    // A force push from C3 back to C2 moves on from what is deployed: newer, though it names C2 again.
    expect(await deployed(C3, C2)).toEqual([serviceId]);
  });
});

describe("pull requests whose head branch git refuses", () => {
  it("refuses the names `git check-ref-format --branch` refuses, and takes the others", async () => {
    const names = [
      "feature/login",
      "fix-ü",
      "a/-b",
      "$(id)",
      "release@2",
      "--upload-pack=touch /tmp/pwned",
      "-x",
      "a..b",
      "a b",
      "a~1",
      "a^",
      "a:b",
      "a?",
      "a*",
      "a[b",
      "a\\b",
      "a@{1}",
      "/a",
      "a/",
      "a//b",
      ".a",
      "a/.b",
      "a.lock",
      "a/b.lock/c",
      "a.",
      "a\u007fb",
      "a\tb",
      "HEAD",
    ];
    const git = promisify(execFile);
    for (const name of names) {
      const gitTakes = await git("git", ["check-ref-format", "--branch", name]).then(
        () => true,
        () => false,
      );
      expect({ name, refused: headBranchProblem(name) !== null }).toEqual({ name, refused: !gitTakes });
    }
  });

  it("opens no preview for a head branch git would refuse, and says why on the delivery", async () => {
    const { environmentId } = await serviceFollowing("blueprint", "web", "https://github.com/Codertocat/Hello-World");
    await developer().git.setPreviewBlueprint({ environmentId, enabled: true });
    const opened = (number: number, branch: string) => {
      const payload = githubExample("pull_request", (e) => e.action === "opened");
      payload.number = number;
      (payload.pull_request as { head: { ref: string } }).head.ref = branch;
      return payload;
    };
    const refused = await deliverAndProcess("github", "pull_request", opened(7, "--upload-pack=touch /tmp/pwned"));
    const [event] = (refused.outcome as { events: { previews: unknown[]; skipped?: string }[] }).events;
    expect(event!.previews).toEqual([]);
    expect(event!.skipped).toBe(
      `the head branch "--upload-pack=touch /tmp/pwned" is not a valid git branch name (must not start with '-': git would read it as an option)`,
    );
    expect((await admin().git.delivery({ deliveryId: refused.id })).summary).toMatch(/^PR #7 opened: the head branch .* is not a valid git branch name/);
    expect(await services.db.select().from(gitPreviews).where(eq(gitPreviews.number, 7))).toEqual([]);
    const names = (await services.db.select({ name: environments.name }).from(environments).where(eq(environments.projectId, projectId))).map((e) => e.name);
    expect(names).not.toContain("pr-7");

    // A valid one is previewed, its services following it.
    const taken = await deliverAndProcess("github", "pull_request", opened(8, "feature/login"));
    const [preview] = (taken.outcome as { events: { previews: { environmentId: string }[] }[] }).events[0]!.previews;
    const previewServices = await developer().services.list({ environmentId: preview!.environmentId });
    expect(gitOf(previewServices[0]!).ref).toEqual({ branch: "feature/login" });
  });
});
