import { z } from "zod";
import type { ProviderAdapter } from "./adapter";
import { ownerAndName, parseAnswer, STATUS_CONTEXT } from "./api-client";
import type { GitEvent, PullRequestEvent } from "./events";
import { header, rawHeader } from "./headers";
import { checked, field, fileCommit, filesOf, isZeroCommit, parse, previousCommit, refOf, urls } from "./payload";
import { hmacMatches, hmacSignature } from "./signing";

/**
 * GitHub. Payloads: https://docs.github.com/en/webhooks/webhook-events-and-payloads.
 * Signature: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries.
 * API: https://docs.github.com/en/rest/commits/statuses, /rest/issues/comments,
 * /rest/commits/commits#compare-two-commits.
 */

const prActions = new Set(["opened", "reopened", "synchronize", "closed"]);

/**
 * Whether an `edited` pull request was moved to another base branch: GitHub says so with
 * `changes.base.ref.from`, Gitea and Forgejo (which send GitHub's event names and payload shape)
 * with `changes.ref.from`. An edit of the title or the body names neither, and is not acted on.
 */
function retargets(payload: unknown): boolean {
  if (field(payload, "action") !== "edited") return false;
  const from = field(payload, "changes", "base", "ref", "from") ?? field(payload, "changes", "ref", "from");
  return typeof from === "string";
}

/** The URLs a repository object lists: the one reading of them, for raw and parsed payloads alike. */
const repositoryUrls = (repository: unknown) =>
  urls(field(repository, "clone_url"), field(repository, "ssh_url"), field(repository, "git_url"), field(repository, "html_url"));

const repository = z
  .object({
    full_name: z.string(),
    clone_url: z.string().optional(),
    ssh_url: z.string().optional(),
    git_url: z.string().optional(),
    html_url: z.string().optional(),
  })
  .passthrough();

const push = z.object({
  ref: z.string(),
  before: z.string().optional(),
  after: z.string(),
  deleted: z.boolean().optional(),
  forced: z.boolean().optional(),
  repository,
  head_commit: z.object({ id: z.string(), message: z.string() }).passthrough().nullable().optional(),
  commits: z.array(fileCommit).default([]),
  sender: z.object({ login: z.string() }).passthrough().optional(),
  pusher: z.object({ name: z.string() }).passthrough().optional(),
});

const pullRequest = z.object({
  action: z.string(),
  number: z.number().int(),
  pull_request: z
    .object({
      title: z.string(),
      html_url: z.string().optional(),
      state: z.string().optional(),
      merged: z.boolean().nullable().optional(),
      head: z.object({ ref: z.string(), sha: z.string(), repo: repository.nullable() }).passthrough(),
      base: z.object({ ref: z.string(), repo: repository }).passthrough(),
    })
    .passthrough(),
  repository,
  sender: z.object({ login: z.string() }).passthrough().optional(),
});

/**
 * The push's time: a push payload's `repository.pushed_at` is a Unix time in seconds, set by the
 * push it reports (other events carry an ISO string, the repository's last push; Gitea's push
 * payload, read here too, has none). A redelivery sends the original payload, with its time.
 */
function pushTime(value: unknown): string | null {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? new Date(value * 1000).toISOString() : null;
}

function pushEvents(payload: unknown): GitEvent[] {
  const p = parse(push, payload, "GitHub push");
  const ref = refOf(p.ref);
  if (!ref) return [];
  const deleted = p.deleted === true || isZeroCommit(p.after);
  // An annotated tag's `after` is the tag object; head_commit is the commit it points at.
  const commit = deleted ? p.after : checked(p.head_commit?.id ?? p.after, "GitHub push");
  const before = previousCommit(p.before);
  // No commit listed: a branch created at, or rewound to, a commit it already had (`forced`).
  const rewritten = !deleted && (p.forced === true || (p.commits.length === 0 && before !== null));
  return [
    {
      kind: "push",
      repositoryUrls: repositoryUrls(p.repository),
      providerRepository: { fullName: p.repository.full_name },
      ref,
      commit,
      deleted,
      headMessage: p.head_commit?.message ?? null,
      // GitHub lists at most 20 commits in a push; beyond that the changed files are unknown, and
      // so they are when it lists none: the push still moved the branch to another tree.
      changedFiles: rewritten || p.commits.length === 0 || p.commits.length >= 20 ? null : filesOf(p.commits),
      before,
      rewritten,
      pushedAt: pushTime(p.repository.pushed_at),
      actor: p.sender?.login ?? p.pusher?.name ?? "unknown",
    },
  ];
}

function pullRequestAction(action: string, payload: unknown, state: string | undefined): PullRequestEvent["action"] {
  if (action === "opened" || action === "reopened") return "opened";
  if (action === "synchronize" || action === "closed") return action;
  // A closed pull request's base cannot be changed on GitHub or Gitea; were one, it has no preview to move.
  if (retargets(payload) && state !== "closed") return "retargeted";
  return "other";
}

function pullRequestEvents(payload: unknown): GitEvent[] {
  const p = parse(pullRequest, payload, "GitHub pull_request");
  const pr = p.pull_request;
  const headUrls = pr.head.repo ? repositoryUrls(pr.head.repo) : [];
  const fork = pr.head.repo ? pr.head.repo.full_name.toLowerCase() !== pr.base.repo.full_name.toLowerCase() : true;
  return [
    {
      kind: "pull_request",
      action: pullRequestAction(p.action, payload, pr.state),
      number: p.number,
      title: pr.title,
      url: pr.html_url ?? null,
      repositoryUrls: repositoryUrls(p.repository),
      providerRepository: { fullName: p.repository.full_name },
      baseBranch: pr.base.ref,
      headBranch: pr.head.ref,
      headCommit: checked(pr.head.sha, "GitHub pull_request"),
      headRepositoryUrls: fork ? headUrls : null,
      merged: pr.merged === true,
      actor: p.sender?.login ?? "unknown",
    },
  ];
}

const compare = z.object({ files: z.array(z.object({ filename: z.string(), previous_filename: z.string().optional() })).default([]) });
/** GitHub's compare lists at most 300 files: a list that long may be cut. */
const COMPARE_LIMIT = 300;

export const github: ProviderAdapter = {
  name: "github",
  verifySignature: (secret, body, headers) => hmacMatches(secret, body, rawHeader(headers, "x-hub-signature-256")),
  signatureHeaders: (secret, body) => ({ "x-hub-signature-256": hmacSignature(secret, body) }),
  deliveryHead: (headers) => ({ deliveryId: header(headers, "x-github-delivery"), event: header(headers, "x-github-event") }),
  actsOn: (event, payload) => event === "push" || (event === "pull_request" && (prActions.has(String(field(payload, "action"))) || retargets(payload))),
  repositoryUrls: (payload) => repositoryUrls(field(payload, "repository")),
  events(event, payload) {
    if (event === "push") return pushEvents(payload);
    if (event === "pull_request") return pullRequestEvents(payload);
    return [];
  },
  api: {
    defaultBaseUrl: "https://api.github.com",
    requestHeaders: (token) => ({ authorization: `Bearer ${token}`, accept: "application/vnd.github+json" }),
    repositoryPath: (repository) => `/repos/${ownerAndName(repository)}`,
    commitStatus: (commit, status) => ({
      method: "POST",
      path: `/statuses/${encodeURIComponent(commit)}`,
      body: { state: status.state, context: STATUS_CONTEXT, description: status.description, ...(status.url ? { target_url: status.url } : {}) },
    }),
    comment: (number, commentId, body) =>
      commentId
        ? { method: "PATCH", path: `/issues/comments/${encodeURIComponent(commentId)}`, body: { body } }
        : { method: "POST", path: `/issues/${number}/comments`, body: { body } },
    async changedFilesBetween(client, before, after) {
      const path = `${client.repository}/compare/${encodeURIComponent(before)}...${encodeURIComponent(after)}`;
      const { files } = parseAnswer(compare, await client.call("GET", path), "GitHub compare");
      if (files.length >= COMPARE_LIMIT) return null;
      return files.flatMap((f) => (f.previous_filename ? [f.filename, f.previous_filename] : [f.filename]));
    },
  },
};
