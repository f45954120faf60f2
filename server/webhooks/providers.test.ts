import { sign, verify } from "@octokit/webhooks-methods";
import { describe, expect, it } from "vitest";
import { fixturePayload, githubExample } from "../../test/support/webhooks";
import { actsOn, deliveryHead, gitEvents, PayloadError, signatureHeaders, storableHeaders, verifySignature } from "./providers";
import { pathsAllow, skipsDeploy } from "./triggers";

const SECRET = "It's a Secret to Everybody";

describe("signatures", () => {
  const body = Buffer.from(JSON.stringify(githubExample("push")));

  it("verifies GitHub's X-Hub-Signature-256 as @octokit/webhooks-methods signs it, and refuses a forged one", async () => {
    const signature = await sign(SECRET, body.toString());
    expect(verifySignature("github", SECRET, body, { "x-hub-signature-256": signature })).toBe(true);
    expect(await verify(SECRET, body.toString(), signatureHeaders("github", SECRET, body)["x-hub-signature-256"]!)).toBe(true);
    expect(verifySignature("github", "another secret", body, { "x-hub-signature-256": signature })).toBe(false);
    expect(verifySignature("github", SECRET, Buffer.concat([body, Buffer.from(" ")]), { "x-hub-signature-256": signature })).toBe(false);
    expect(verifySignature("github", SECRET, body, { "x-hub-signature-256": signature.slice(0, -2) })).toBe(false);
    expect(verifySignature("github", SECRET, body, { "x-hub-signature-256": signature.replace("sha256=", "sha1=") })).toBe(false);
    expect(verifySignature("github", SECRET, body, {})).toBe(false);
  });

  it("checks GitLab's token, Bitbucket's X-Hub-Signature and the generic X-Slipway-Signature", () => {
    expect(verifySignature("gitlab", SECRET, body, { "x-gitlab-token": SECRET })).toBe(true);
    expect(verifySignature("gitlab", SECRET, body, { "x-gitlab-token": `${SECRET}x` })).toBe(false);
    expect(verifySignature("gitlab", SECRET, body, {})).toBe(false);
    for (const provider of ["bitbucket", "generic"] as const) {
      const headers = signatureHeaders(provider, SECRET, body);
      expect(verifySignature(provider, SECRET, body, headers)).toBe(true);
      expect(verifySignature(provider, "wrong", body, headers)).toBe(false);
      // A signature in another provider's header does not count.
      expect(verifySignature(provider, SECRET, body, signatureHeaders("github", SECRET, body))).toBe(false);
    }
  });
});

describe("delivery heads and stored headers", () => {
  it("takes each provider's delivery id and event, and refuses a delivery without them", () => {
    const body = Buffer.from("{}");
    expect(deliveryHead("github", { "x-github-delivery": "d1", "x-github-event": "push" }, body)).toEqual({ deliveryId: "d1", event: "push" });
    expect(deliveryHead("gitlab", { "idempotency-key": "k1", "x-gitlab-event-uuid": "u1", "x-gitlab-event": "Push Hook" }, body)).toEqual({
      deliveryId: "k1",
      event: "Push Hook",
    });
    expect(deliveryHead("gitlab", { "x-gitlab-event-uuid": "u1", "x-gitlab-event": "Push Hook" }, body)?.deliveryId).toBe("u1");
    expect(deliveryHead("bitbucket", { "x-request-uuid": "r1", "x-event-key": "repo:push" }, body)?.deliveryId).toBe("r1");
    // Without X-Request-UUID the id is the hook's plus the body's digest: the same body retried is the same delivery.
    const derived = deliveryHead("bitbucket", { "x-hook-uuid": "h1", "x-event-key": "repo:push" }, body)?.deliveryId;
    expect(derived).toMatch(/^h1:[0-9a-f]{64}$/);
    expect(deliveryHead("bitbucket", { "x-hook-uuid": "h1", "x-event-key": "repo:push" }, Buffer.from("{ }"))?.deliveryId).not.toBe(derived);
    expect(deliveryHead("generic", { "x-slipway-delivery": "g1", "x-slipway-event": "push" }, body)).toEqual({ deliveryId: "g1", event: "push" });
    expect(deliveryHead("github", { "x-github-event": "push" }, body)).toBeNull();
    expect(deliveryHead("github", { "x-github-delivery": "d1" }, body)).toBeNull();
  });

  it("never stores the GitLab token or credentials", () => {
    const kept = storableHeaders({
      "x-gitlab-token": SECRET,
      authorization: "Bearer x",
      cookie: "a=b",
      "x-gitlab-event": "Push Hook",
      "x-forwarded-for": ["1.2.3.4", "5.6.7.8"],
    });
    expect(kept).toEqual({ "x-gitlab-event": "Push Hook", "x-forwarded-for": "1.2.3.4, 5.6.7.8" });
  });
});

describe("GitHub payloads (@octokit/webhooks-examples)", () => {
  it("reads a branch push: ref, exact commit, head message, changed files, sender", () => {
    const payload = githubExample("push", (e) => e.ref === "refs/heads/master");
    expect(actsOn("github", "push", payload)).toBe(true);
    const [event] = gitEvents("github", "push", payload);
    expect(event).toMatchObject({
      kind: "push",
      ref: { branch: "master" },
      commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
      deleted: false,
      headMessage: "Initial commit",
      changedFiles: ["README.md"],
      // The example's push created the branch: its `before` is all zeros.
      before: null,
      // The push's own time (repository.pushed_at, Unix seconds), not its commit's.
      pushedAt: "2019-05-15T15:20:57.000Z",
      actor: "Codertocat",
      providerRepository: { fullName: "Codertocat/Hello-World" },
    });
    expect(event!.kind === "push" && event!.repositoryUrls).toContain("git@github.com:Codertocat/Hello-World.git");
  });

  it("reads a tag push at the tagged commit, and a deleted tag as deleted", () => {
    const [tag] = gitEvents(
      "github",
      "push",
      githubExample("push", (e) => e.ref === "refs/tags/simple-tag" && e.deleted === false),
    );
    expect(tag).toMatchObject({ kind: "push", ref: { tag: "simple-tag" }, commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", deleted: false });
    const [gone] = gitEvents(
      "github",
      "push",
      githubExample("push", (e) => e.deleted === true),
    );
    expect(gone).toMatchObject({ ref: { tag: "simple-tag" }, deleted: true });
  });

  it("reads pull requests opened, reopened, synchronize, closed (merged or not), and ignores other actions", () => {
    const action = (name: string) => githubExample("pull_request", (e) => e.action === name);
    const [opened] = gitEvents("github", "pull_request", action("opened"));
    expect(opened).toMatchObject({
      kind: "pull_request",
      action: "opened",
      number: 2,
      baseBranch: "master",
      headBranch: "changes",
      headCommit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
      headRepositoryUrls: null,
      merged: false,
      actor: "Codertocat",
    });
    expect(gitEvents("github", "pull_request", action("reopened"))[0]).toMatchObject({ action: "opened" });
    expect(gitEvents("github", "pull_request", action("synchronize"))[0]).toMatchObject({ action: "synchronize" });
    const merged = action("closed");
    (merged.pull_request as Record<string, unknown>).merged = true;
    expect(gitEvents("github", "pull_request", merged)[0]).toMatchObject({ action: "closed", merged: true });
    expect(gitEvents("github", "pull_request", action("closed"))[0]).toMatchObject({ action: "closed", merged: false });
    expect(actsOn("github", "pull_request", action("labeled"))).toBe(false);
    expect(actsOn("github", "ping", githubExample("ping"))).toBe(false);
  });

  it("reads an edit moving a pull request to another base (GitHub's changes.base, Gitea's and Forgejo's changes.ref) as retargeted, and acts on no other edit", () => {
    const edited = (changes: Record<string, unknown>, state = "open") => {
      const payload = githubExample("pull_request", (e) => e.action === "opened");
      payload.action = "edited";
      payload.changes = changes;
      (payload.pull_request as { base: { ref: string }; state: string }).base.ref = "develop";
      (payload.pull_request as { state: string }).state = state;
      return payload;
    };
    for (const changes of [{ base: { ref: { from: "master" }, sha: { from: "6113728f27ae82c7b1a177c8d03f9e96e0adf246" } } }, { ref: { from: "master" } }]) {
      expect(actsOn("github", "pull_request", edited(changes))).toBe(true);
      expect(gitEvents("github", "pull_request", edited(changes))[0]).toMatchObject({ action: "retargeted", baseBranch: "develop", headBranch: "changes" });
    }
    // A title or body edit is stored as not acted on; a closed pull request has no preview to move.
    expect(actsOn("github", "pull_request", edited({ title: { from: "Old title" } }))).toBe(false);
    expect(actsOn("github", "pull_request", edited({ body: { from: "Old body" } }))).toBe(false);
    expect(gitEvents("github", "pull_request", edited({ title: { from: "Old title" } }))[0]).toMatchObject({ action: "other" });
    expect(gitEvents("github", "pull_request", edited({ ref: { from: "master" } }, "closed"))[0]).toMatchObject({ action: "other" });
  });

  it("marks a pull request from a fork", () => {
    const payload = githubExample("pull_request", (e) => e.action === "opened");
    const head = (payload.pull_request as { head: { repo: Record<string, unknown> } }).head;
    head.repo = { ...head.repo, full_name: "someone/Hello-World", clone_url: "https://github.com/someone/Hello-World.git" };
    expect(gitEvents("github", "pull_request", payload)[0]).toMatchObject({
      headRepositoryUrls: expect.arrayContaining(["https://github.com/someone/Hello-World.git"]),
    });
  });

  it("rejects a payload without the documented shape", () => {
    expect(() => gitEvents("github", "push", { ref: "refs/heads/main" })).toThrow(PayloadError);
    expect(() =>
      gitEvents("github", "push", { ...githubExample("push", (e) => e.ref === "refs/heads/master"), after: "not-a-sha", head_commit: null }),
    ).toThrow(PayloadError);
  });
});

describe("GitLab payloads (documented examples)", () => {
  it("reads a Push Hook and a Tag Push Hook", () => {
    const [push] = gitEvents("gitlab", "Push Hook", fixturePayload("gitlab", "push-hook"));
    expect(push).toMatchObject({
      ref: { branch: "master" },
      commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
      headMessage: "fixed readme",
      changedFiles: ["CHANGELOG", "app/controller/application.rb"],
      before: "95790bf891e76fee5e1747ab589903a6a1f80f22",
      pushedAt: null,
      actor: "jsmith",
      providerRepository: { projectId: 15 },
    });
    const [tag] = gitEvents("gitlab", "Tag Push Hook", fixturePayload("gitlab", "tag-push-hook"));
    expect(tag).toMatchObject({ ref: { tag: "v1.0.0" }, commit: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7" });
  });

  it("reads Merge Request Hooks: open, update with new commits, merge, close", () => {
    const read = (name: string) => gitEvents("gitlab", "Merge Request Hook", fixturePayload("gitlab", name))[0];
    expect(read("merge-request-open")).toMatchObject({
      action: "opened",
      number: 1,
      baseBranch: "master",
      headBranch: "ms-viewport",
      headCommit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
      actor: "root",
    });
    expect(read("merge-request-update")).toMatchObject({ action: "synchronize", headCommit: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678" });
    expect(read("merge-request-merge")).toMatchObject({ action: "closed", merged: true });
    expect(read("merge-request-close")).toMatchObject({ action: "closed", merged: false });
    // An update without new commits: retargeted when it changed the target branch, nothing else otherwise.
    const update = (changes: Record<string, unknown>, state = "opened") => {
      const payload = fixturePayload("gitlab", "merge-request-update");
      const attributes = payload.object_attributes as Record<string, unknown>;
      delete attributes.oldrev;
      attributes.target_branch = "develop";
      attributes.state = state;
      payload.changes = { ...(payload.changes as object), ...changes };
      return payload;
    };
    expect(gitEvents("gitlab", "Merge Request Hook", update({ target_branch: { previous: "master", current: "develop" } }))[0]).toMatchObject({
      action: "retargeted",
      baseBranch: "develop",
      headBranch: "ms-viewport",
    });
    expect(gitEvents("gitlab", "Merge Request Hook", update({ title: { previous: "MS-Viewport", current: "Viewport" } }))[0]).toMatchObject({
      action: "other",
    });
    expect(gitEvents("gitlab", "Merge Request Hook", update({ target_branch: { previous: "master", current: "develop" } }, "closed"))[0]).toMatchObject({
      action: "other",
    });
    const approved = fixturePayload("gitlab", "merge-request-open");
    (approved.object_attributes as Record<string, unknown>).action = "approved";
    expect(actsOn("gitlab", "Merge Request Hook", approved)).toBe(false);
  });
});

describe("Bitbucket payloads (documented examples)", () => {
  it("reads repo:push, whose changed files are unknown", () => {
    const [push] = gitEvents("bitbucket", "repo:push", fixturePayload("bitbucket", "repo-push"));
    expect(push).toMatchObject({
      ref: { branch: "master" },
      commit: "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
      changedFiles: null,
      before: "1e65c05c1d5171631d92438a13901ca7dae9618c",
      actor: "emma",
      providerRepository: { fullName: "team_name/repo_name" },
    });
    expect(push!.repositoryUrls).toContain("https://bitbucket.org/team_name/repo_name");
  });

  it("reads pull requests created, updated, fulfilled and rejected", () => {
    const read = (name: string) => gitEvents("bitbucket", `pullrequest:${name}`, fixturePayload("bitbucket", `pullrequest-${name}`))[0];
    expect(read("created")).toMatchObject({ action: "opened", number: 1, baseBranch: "master", headBranch: "branch2", headCommit: "d3022fc0ca3d" });
    expect(read("updated")).toMatchObject({ action: "synchronize", headCommit: "8e9f2c1a7b3d" });
    // pullrequest:updated does not say whether the destination changed; no other event may have.
    expect(read("updated")).toMatchObject({ mayBeRetargeted: true });
    expect(read("created")).not.toMatchObject({ mayBeRetargeted: true });
    expect(read("fulfilled")).toMatchObject({ action: "closed", merged: true });
    expect(read("rejected")).toMatchObject({ action: "closed", merged: false });
    expect(actsOn("bitbucket", "repo:fork", {})).toBe(false);
  });
});

describe("generic payloads (README)", () => {
  it("reads a pull request retargeted to another base branch", () => {
    const payload = {
      action: "retargeted",
      number: 5,
      repository: "https://git.example.com/team/plain.git",
      baseBranch: "develop",
      headBranch: "feature",
      headCommit: "a".repeat(40),
    };
    expect(gitEvents("generic", "pull_request", payload)[0]).toMatchObject({ action: "retargeted", baseBranch: "develop", number: 5 });
    expect(() => gitEvents("generic", "pull_request", { ...payload, action: "edited" })).toThrow(PayloadError);
  });
});

describe("push filters", () => {
  const triggers = { autoDeploy: true, followTags: false };
  it("deploys when a changed file passes the include and exclude globs", () => {
    expect(pathsAllow({ ...triggers, includePaths: [], excludePaths: [] }, ["docs/a.md"])).toBe(true);
    expect(pathsAllow({ ...triggers, includePaths: ["api/**"], excludePaths: [] }, ["web/index.ts"])).toBe(false);
    expect(pathsAllow({ ...triggers, includePaths: ["api/**"], excludePaths: [] }, ["web/index.ts", "api/server.ts"])).toBe(true);
    expect(pathsAllow({ ...triggers, includePaths: [], excludePaths: ["**/*.md", "docs/**"] }, ["README.md", "docs/x.txt"])).toBe(false);
    expect(pathsAllow({ ...triggers, includePaths: [], excludePaths: ["**/*.md"] }, ["README.md", "src/a.ts"])).toBe(true);
    expect(pathsAllow({ ...triggers, includePaths: ["api/**"], excludePaths: ["api/**/*.test.ts"] }, ["api/a.test.ts"])).toBe(false);
    expect(pathsAllow({ ...triggers, includePaths: [".github/**"], excludePaths: [] }, [".github/workflows/ci.yml"])).toBe(true);
    // Unknown changed files (Bitbucket, long pushes): deploy.
    expect(pathsAllow({ ...triggers, includePaths: ["api/**"], excludePaths: [] }, null)).toBe(true);
  });

  it("honours [skip deploy] in the head commit message", () => {
    expect(skipsDeploy("Fix typo [skip deploy]")).toBe(true);
    expect(skipsDeploy("Fix typo\n\n[Skip Deploy]")).toBe(true);
    expect(skipsDeploy("skip deploy")).toBe(false);
    expect(skipsDeploy(null)).toBe(false);
  });
});
