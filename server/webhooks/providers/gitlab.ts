import { z } from "zod";
import type { ProviderAdapter } from "./adapter";
import { parseAnswer, ProviderApiError, STATUS_CONTEXT, type StatusState } from "./api-client";
import type { GitEvent, PullRequestEvent } from "./events";
import { header, rawHeader } from "./headers";
import { checked, field, fileCommit, filesOf, isZeroCommit, parse, previousCommit, refOf, urls } from "./payload";
import { tokenMatches } from "./signing";

/**
 * GitLab. Payloads: https://docs.gitlab.com/user/project/integrations/webhook_events/.
 * Secret token: https://docs.gitlab.com/user/project/integrations/webhooks/#validate-requests-with-a-secret-token.
 * API: https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit, /api/notes/,
 * /api/repositories/#compare-branches-tags-or-commits.
 */

const mrActions = new Set(["open", "reopen", "update", "close", "merge"]);

/** The URLs a project object lists: the one reading of them, for raw and parsed payloads alike. */
const projectUrls = (project: unknown) => urls(field(project, "git_http_url"), field(project, "git_ssh_url"), field(project, "web_url"));

const project = z
  .object({
    id: z.number().int(),
    git_http_url: z.string().optional(),
    git_ssh_url: z.string().optional(),
    web_url: z.string().optional(),
    path_with_namespace: z.string().optional(),
  })
  .passthrough();

const push = z.object({
  ref: z.string(),
  before: z.string().optional(),
  after: z.string(),
  checkout_sha: z.string().nullable().optional(),
  user_username: z.string().optional(),
  user_name: z.string().optional(),
  project,
  commits: z.array(fileCommit.extend({ id: z.string(), message: z.string() })).default([]),
  total_commits_count: z.number().optional(),
});

const mergeRequest = z.object({
  user: z.object({ username: z.string() }).passthrough().optional(),
  project,
  object_attributes: z
    .object({
      iid: z.number().int(),
      title: z.string(),
      url: z.string().optional(),
      action: z.string().optional(),
      state: z.string().optional(),
      source_branch: z.string(),
      target_branch: z.string(),
      source_project_id: z.number().int().optional(),
      target_project_id: z.number().int().optional(),
      source: project.partial({ id: true }).optional(),
      last_commit: z.object({ id: z.string() }).passthrough(),
      oldrev: z.string().optional(),
    })
    .passthrough(),
});

/** Push Hook and Tag Push Hook: one payload shape. */
function pushEvents(event: string, payload: unknown): GitEvent[] {
  const p = parse(push, payload, `GitLab ${event}`);
  const ref = refOf(p.ref);
  if (!ref) return [];
  const deleted = isZeroCommit(p.after);
  const head = p.commits.find((c) => c.id === p.checkout_sha) ?? p.commits.at(-1);
  const before = previousCommit(p.before);
  const listed = p.total_commits_count ?? p.commits.length;
  return [
    {
      kind: "push",
      repositoryUrls: projectUrls(p.project),
      providerRepository: { projectId: p.project.id, fullName: p.project.path_with_namespace },
      ref,
      commit: deleted ? p.after : checked(p.checkout_sha ?? p.after, `GitLab ${event}`),
      deleted,
      headMessage: head?.message ?? null,
      // GitLab lists at most 20 commits (total_commits_count says how many there were); none
      // when the branch was created at, or rewound to, a commit it already had.
      changedFiles: listed === 0 || listed > p.commits.length ? null : filesOf(p.commits),
      before,
      // GitLab says nothing of force pushes; a push of no new commit moved the branch backwards.
      rewritten: listed === 0 && before !== null && !deleted,
      // The payload has no time of the push, only of commits.
      pushedAt: null,
      actor: p.user_username ?? p.user_name ?? "unknown",
    },
  ];
}

/**
 * An `update` says what it changed in `changes`: `target_branch` ({previous, current}) when the
 * merge request was moved to another target branch (a new commit shows as `oldrev` instead; a
 * title or description edit as neither, and changes no preview). A move counts before a new
 * commit in the same delivery: the previews it leaves are deployed at the head commit as well.
 */
function mergeRequestAction(mr: z.infer<typeof mergeRequest>["object_attributes"], payload: unknown): PullRequestEvent["action"] {
  if (mr.action === "open" || mr.action === "reopen") return "opened";
  if (mr.action === "close" || mr.action === "merge") return "closed";
  if (mr.action !== "update") return "other";
  const retargeted = typeof field(payload, "changes", "target_branch", "current") === "string";
  // A closed or merged merge request has no preview to move or open.
  if (retargeted && (mr.state === undefined || mr.state === "opened")) return "retargeted";
  return mr.oldrev ? "synchronize" : "other";
}

function mergeRequestEvents(payload: unknown): GitEvent[] {
  const p = parse(mergeRequest, payload, "GitLab Merge Request Hook");
  const mr = p.object_attributes;
  const fork = mr.source_project_id !== undefined && mr.target_project_id !== undefined && mr.source_project_id !== mr.target_project_id;
  const action = mergeRequestAction(mr, payload);
  return [
    {
      kind: "pull_request",
      action,
      number: mr.iid,
      title: mr.title,
      url: mr.url ?? null,
      repositoryUrls: projectUrls(p.project),
      providerRepository: { projectId: p.project.id, fullName: p.project.path_with_namespace },
      baseBranch: mr.target_branch,
      headBranch: mr.source_branch,
      headCommit: checked(mr.last_commit.id, "GitLab Merge Request Hook"),
      headRepositoryUrls: fork ? projectUrls(mr.source) : null,
      merged: mr.action === "merge" || mr.state === "merged",
      actor: p.user?.username ?? "unknown",
    },
  ];
}

const states: Record<StatusState, string> = { pending: "running", success: "success", failure: "failed" };
const compare = z.object({ diffs: z.array(z.object({ old_path: z.string(), new_path: z.string() })).default([]) });

export const gitlab: ProviderAdapter = {
  name: "gitlab",
  // The X-Gitlab-Token header is the secret itself, not a signature of the body.
  verifySignature: (secret, _body, headers) => tokenMatches(secret, rawHeader(headers, "x-gitlab-token")),
  signatureHeaders: (secret) => ({ "x-gitlab-token": secret }),
  deliveryHead: (headers) => ({
    // Idempotency-Key stays the same across GitLab's retries of one event; the event UUID too (older GitLab sends only it).
    deliveryId: header(headers, "idempotency-key") ?? header(headers, "x-gitlab-event-uuid"),
    event: header(headers, "x-gitlab-event"),
  }),
  actsOn: (event, payload) =>
    event === "Push Hook" ||
    event === "Tag Push Hook" ||
    (event === "Merge Request Hook" && mrActions.has(String(field(payload, "object_attributes", "action")))),
  repositoryUrls: (payload) => projectUrls(field(payload, "project")),
  events(event, payload) {
    if (event === "Push Hook" || event === "Tag Push Hook") return pushEvents(event, payload);
    if (event === "Merge Request Hook") return mergeRequestEvents(payload);
    return [];
  },
  api: {
    defaultBaseUrl: "https://gitlab.com/api/v4",
    requestHeaders: (token) => ({ "private-token": token, accept: "application/json" }),
    repositoryPath(repository) {
      // The numeric project id when the delivery gave it; the path with namespace names the project too.
      const id = repository.projectId ?? repository.fullName;
      if (id === undefined) throw new ProviderApiError("The delivery named no GitLab project");
      return `/projects/${encodeURIComponent(String(id))}`;
    },
    commitStatus: (commit, status) => ({
      method: "POST",
      path: `/statuses/${encodeURIComponent(commit)}`,
      body: { state: states[status.state], name: STATUS_CONTEXT, description: status.description, ...(status.url ? { target_url: status.url } : {}) },
    }),
    comment: (number, commentId, body) =>
      commentId
        ? { method: "PUT", path: `/merge_requests/${number}/notes/${encodeURIComponent(commentId)}`, body: { body } }
        : { method: "POST", path: `/merge_requests/${number}/notes`, body: { body } },
    async changedFilesBetween(client, before, after) {
      const path = `${client.repository}/repository/compare?from=${encodeURIComponent(before)}&to=${encodeURIComponent(after)}`;
      const { diffs } = parseAnswer(compare, await client.call("GET", path), "GitLab compare");
      return [...new Set(diffs.flatMap((d) => [d.new_path, d.old_path]))];
    },
  },
};
