/**
 * Git integration end to end: a real control plane (web with the webhook intake, worker), the
 * real engine process with its router, a real git server on 127.0.0.1 whose bare repository has
 * a real post-receive hook that sends GitHub-format push deliveries, and a local HTTP server
 * playing GitHub's REST API (it records the statuses and comments Slipway posts).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { testPort } from "../support/ports";
import type { Runner } from "graphile-worker";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { startWebServer } from "../../server/web-server";
import { startWorker } from "../../worker/runner";
import { createTestDatabase, type TestDatabase } from "../database";
import { eventually, fixture, request } from "../engine-harness";
import { git, startGitServer, type GitServer } from "../git-server";
import { killProcessesUnder } from "../process-cleanup";
import { spawnEngine, type EngineProcess } from "../support/engine-process";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";
import { deliver, githubExample, startProviderApi } from "../support/webhooks";

const logger = pino({ level: "silent" });
const hookScript = fileURLToPath(new URL("../fixtures/webhooks/post-receive.mjs", import.meta.url));

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;
let worker: Runner;
let gitServer: GitServer;
let engine: EngineProcess;
let engineHome: string;
let routerPort: number;
let providerApi: Awaited<ReturnType<typeof startProviderApi>>;
let hook: { connectionId: string; url: string; secret: string };
let ids: { projectId: string; environmentId: string; serviceId: string };

const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });
const admin = () => createCaller({ services, actor: org.as("ADMIN") });
const serve = async (host: string) => request(routerPort, host);
const FULL_NAME = "slipway/shop";

async function waitFor(deploymentId: string, expected: string) {
  const terminal = ["DEPLOYED", "STOPPED", "DELETED", "BUILD_ERROR", "DEPLOYMENT_ERROR", "CANCELED"];
  const done = await eventually(
    async () => {
      const current = await developer().deployments.get({ deploymentId });
      return terminal.includes(current.status) ? current : undefined;
    },
    90_000,
    `deployment ${deploymentId} to end`,
  );
  expect(done.status, `${done.statusMessage}\n${engine.output().slice(-2000)}`).toBe(expected);
  return done;
}

/** The newest delivery of the connection once processed (the hook's push, or a test's delivery). */
async function processedDelivery(match: (d: { event: string; outcome: Record<string, unknown> | null }) => boolean) {
  return eventually(
    async () => {
      const deliveries = await admin().git.deliveries({ connectionId: hook.connectionId, limit: 20 });
      return deliveries.find((d) => d.status !== "PENDING" && match(d));
    },
    20_000,
    "the delivery to be processed",
  );
}

/** GitHub's pull_request example, pointed at our repository and branches. */
function pullRequest(action: string, number: number, headBranch: string, headSha: string) {
  const payload = githubExample("pull_request", (e) => e.action === action);
  const repo = {
    full_name: FULL_NAME,
    name: "shop",
    clone_url: gitServer.url("shop"),
    ssh_url: gitServer.url("shop"),
    git_url: gitServer.url("shop"),
    html_url: gitServer.url("shop"),
  };
  const pr = payload.pull_request as Record<string, Record<string, unknown>>;
  payload.number = number;
  payload.repository = { ...(payload.repository as object), ...repo };
  pr.head = { ...pr.head, ref: headBranch, sha: headSha, repo: { ...(pr.head!.repo as object), ...repo } };
  pr.base = { ...pr.base, ref: "main", repo: { ...(pr.base!.repo as object), ...repo } };
  return payload;
}

beforeAll(async () => {
  database = await createTestDatabase();
  const webPort = await testPort();
  services = testServices(database.db, { leaseSeconds: 10, publicUrl: `http://127.0.0.1:${webPort}` });
  org = await seedOrganization(services, "gitops");
  routerPort = await testPort();
  engineHome = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-git-engine-"));
  providerApi = await startProviderApi();
  gitServer = await startGitServer();
  await gitServer.createRepo("shop", fixture("node-app"), { "version.txt": "1\n" });
  web = await startWebServer({ services, databaseUrl: database.url, logger, port: webPort, host: "127.0.0.1" });
  worker = await startWorker({ services, connectionString: database.url, logger, reconcileIntervalMs: 500 });
  engine = spawnEngine({ url: web.url, token: org.engineToken, home: engineHome, routerPort });

  const { connection, secret } = await admin().git.connect({ provider: "github", name: "github", apiBaseUrl: providerApi.url, apiToken: "ghp_test_token" });
  hook = { connectionId: connection.id, url: connection.webhookUrl, secret };
  // The real hook: git runs it after every push received over HTTP.
  const bare = gitServer.repoPath("shop");
  await fs.writeFile(
    path.join(bare, "slipway-webhook.json"),
    JSON.stringify({ url: hook.url, secret, cloneUrl: gitServer.url("shop"), fullName: FULL_NAME, sender: "octo" }),
  );
  await fs.writeFile(path.join(bare, "hooks", "post-receive"), `#!/bin/sh\nexec "${process.execPath}" "${hookScript}"\n`, { mode: 0o755 });

  const project = await developer().projects.create({ name: "shop" });
  const environment = await developer().environments.create({ projectId: project.id, name: "dev" });
  const service = await developer().services.create({
    environmentId: environment.id,
    name: "web",
    config: { git: { url: gitServer.url("shop"), ref: { branch: "main" } }, healthCheckPath: "/health" },
  });
  ids = { projectId: project.id, environmentId: environment.id, serviceId: service.id };
}, 60_000);

afterAll(async () => {
  await engine?.stop("SIGKILL");
  await worker?.stop();
  await web?.close();
  await gitServer?.close();
  await providerApi?.close();
  if (engineHome) {
    await killProcessesUnder(engineHome);
    await fs.rm(engineHome, { recursive: true, force: true });
  }
});

describe("git push to deploy", () => {
  it("a git push to the branch a service follows deploys that exact commit, through the repository's own hook", async () => {
    const commit = await gitServer.pushDirectory("shop", fixture("node-app"), { "version.txt": "2\n" });
    const delivery = await processedDelivery((d) => d.event === "push" && JSON.stringify(d.outcome).includes(commit));
    expect(delivery.status).toBe("PROCESSED");
    const [pushed] = (delivery.outcome as { events: { commit: string; deployments: { deploymentId: string; serviceIds: string[] }[] }[] }).events;
    expect(pushed!.commit).toBe(commit);
    expect(pushed!.deployments.map((d) => d.serviceIds)).toEqual([[ids.serviceId]]);

    const done = await waitFor(pushed!.deployments[0]!.deploymentId, "DEPLOYED");
    expect(done).toMatchObject({ origin: "WEBHOOK", actor: "github:octo" });
    expect(done.commits[ids.serviceId]).toBe(commit);
    const answer = await serve("web-dev-shop.localhost");
    expect(JSON.parse(answer.body).version).toBe("2");
  });

  it("a push marked [skip deploy] is received and deploys nothing", async () => {
    const worktree = path.join(path.dirname(gitServer.repoPath("shop")), "..", "worktrees", "shop");
    await fs.writeFile(path.join(worktree, "NOTES.md"), "notes\n");
    await git(worktree, "add", "--all");
    await git(worktree, "commit", "--quiet", "-m", "Notes only [skip deploy]");
    await git(worktree, "push", "--quiet", "origin", "HEAD:refs/heads/main");
    const commit = await git(worktree, "rev-parse", "HEAD");
    const delivery = await processedDelivery((d) => JSON.stringify(d.outcome).includes(commit));
    const [pushed] = (delivery.outcome as { events: { deployments: unknown[]; reason: string }[] }).events;
    expect(pushed!.deployments).toEqual([]);
    expect(pushed!.reason).toContain("[skip deploy]");
    expect(JSON.parse((await serve("web-dev-shop.localhost")).body).version).toBe("2");
  }, 240_000);
});

describe("pull request previews", () => {
  it("opens a preview that serves the branch, redeploys it on a new commit, reports to GitHub, and deletes it when merged", async () => {
    await developer().git.setPreviewBlueprint({ environmentId: ids.environmentId, enabled: true, lifetimeSeconds: 3600 });
    // The branch is pushed first (its push delivery deploys nothing: no service follows it).
    const head = await gitServer.pushDirectory("shop", fixture("node-app"), { "version.txt": "preview-1\n" }, "feature");
    await processedDelivery((d) => JSON.stringify(d.outcome).includes(head));

    const opened = await deliver(hook.url, {
      provider: "github",
      secret: hook.secret,
      event: "pull_request",
      payload: pullRequest("opened", 7, "feature", head),
    });
    expect(opened.status).toBe(202);
    const delivery = await processedDelivery((d) => d.event === "pull_request" && JSON.stringify(d.outcome).includes('"created":true'));
    const [preview] = (delivery.outcome as { events: { previews: { environmentId: string; name: string; deploymentId: string }[] }[] }).events[0]!.previews;
    expect(preview!.name).toBe("pr-7");
    const deployed = await waitFor(preview!.deploymentId, "DEPLOYED");
    const previewService = (await developer().services.list({ environmentId: preview!.environmentId }))[0]!;
    expect(deployed.commits[previewService.id]).toBe(head);
    expect(JSON.parse((await serve("web-pr-7-shop.localhost")).body).version).toBe("preview-1");
    // The blueprint keeps serving its own branch.
    expect(JSON.parse((await serve("web-dev-shop.localhost")).body).version).toBe("2");

    const previewUrl = `http://web-pr-7-shop.localhost:${routerPort}`;
    const success = await eventually(
      () => providerApi.calls.find((c) => c.path === `/repos/${FULL_NAME}/statuses/${head}` && c.body.state === "success"),
      20_000,
      "the success status",
    );
    expect(success.body).toMatchObject({ context: "slipway/preview", target_url: previewUrl });
    expect(providerApi.calls.find((c) => c.path === `/repos/${FULL_NAME}/statuses/${head}` && c.body.state === "pending")).toBeDefined();
    const comment = await eventually(
      () => providerApi.calls.find((c) => c.method === "POST" && c.path === `/repos/${FULL_NAME}/issues/7/comments`),
      20_000,
      "the comment",
    );
    expect(comment.body.body).toContain(previewUrl);
    expect(comment.headers.authorization).toBe("Bearer ghp_test_token");

    // A new commit on the branch: the pull request's synchronize redeploys the preview at it.
    const next = await gitServer.pushDirectory("shop", fixture("node-app"), { "version.txt": "preview-2\n" }, "feature");
    await deliver(hook.url, { provider: "github", secret: hook.secret, event: "pull_request", payload: pullRequest("synchronize", 7, "feature", next) });
    const synced = await processedDelivery((d) => d.event === "pull_request" && JSON.stringify(d.outcome).includes('"action":"synchronize"'));
    const redeploy = (synced.outcome as { events: { previews: { deploymentId: string }[] }[] }).events[0]!.previews[0]!;
    const redeployed = await waitFor(redeploy.deploymentId, "DEPLOYED");
    expect(redeployed.commits[previewService.id]).toBe(next);
    expect(JSON.parse((await serve("web-pr-7-shop.localhost")).body).version).toBe("preview-2");
    // The same comment is edited, not a second one posted.
    await eventually(
      () => providerApi.calls.find((c) => c.method === "PATCH" && c.path.startsWith(`/repos/${FULL_NAME}/issues/comments/`)),
      20_000,
      "the comment edit",
    );
    expect(providerApi.calls.filter((c) => c.method === "POST" && c.path.endsWith("/issues/7/comments"))).toHaveLength(1);

    const closed = pullRequest("closed", 7, "feature", next);
    (closed.pull_request as Record<string, unknown>).merged = true;
    await deliver(hook.url, { provider: "github", secret: hook.secret, event: "pull_request", payload: closed });
    const gone = await processedDelivery((d) => d.event === "pull_request" && JSON.stringify(d.outcome).includes('"deleted":true'));
    const deletion = (gone.outcome as { events: { previews: { deploymentId: string }[] }[] }).events[0]!.previews[0]!;
    expect(deletion.deploymentId).toMatch(/^[0-9a-f-]{36}$/);
    // A finished DELETE removes the environment, and its deployments with it (it may be gone already).
    await eventually(
      () =>
        developer()
          .environments.get({ environmentId: preview!.environmentId })
          .then(
            () => false,
            (error: { code?: string }) => error.code === "NOT_FOUND",
          ),
      90_000,
      "the preview environment to be deleted",
    );
    expect((await serve("web-pr-7-shop.localhost")).status).toBe(404);
    expect(JSON.parse((await serve("web-dev-shop.localhost")).body).version).toBe("2");
  }, 240_000);
});
