import { z } from "zod";
import type { GitProvider, ProviderRepository } from "../db/schema";

/**
 * The providers' REST APIs, for what Slipway reports back on a pull request (a commit status
 * and one comment, edited as the preview changes) and for the files a push changed when its
 * payload does not list them.
 * GitHub: https://docs.github.com/en/rest/commits/statuses, /rest/issues/comments.
 * GitLab: https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit, /api/notes/.
 * Bitbucket Cloud: https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/,
 * /api-group-pullrequests/ (comments).
 */
export const defaultApiBaseUrls: Record<Exclude<GitProvider, "generic">, string> = {
  github: "https://api.github.com",
  gitlab: "https://gitlab.com/api/v4",
  bitbucket: "https://api.bitbucket.org/2.0",
};

export type StatusState = "pending" | "success" | "failure";
export type ProviderTarget = { provider: GitProvider; apiBaseUrl: string | null; token: string; repository: ProviderRepository };

/** The name statuses are posted under, so a later one replaces the earlier on the provider's side. */
const STATUS_CONTEXT = "slipway/preview";

const gitlabStates: Record<StatusState, string> = { pending: "running", success: "success", failure: "failed" };
const bitbucketStates: Record<StatusState, string> = { pending: "INPROGRESS", success: "SUCCESSFUL", failure: "FAILED" };

export class ProviderApiError extends Error {}

function base(target: ProviderTarget): string {
  if (target.provider === "generic") throw new ProviderApiError("The generic provider has no API to report to");
  return (target.apiBaseUrl ?? defaultApiBaseUrls[target.provider]).replace(/\/+$/, "");
}

function repoPath(target: ProviderTarget): string {
  if (target.provider === "gitlab") {
    const id = target.repository.projectId ?? target.repository.fullName;
    if (id === undefined) throw new ProviderApiError("The delivery named no GitLab project");
    return `/projects/${encodeURIComponent(String(id))}`;
  }
  const fullName = target.repository.fullName;
  if (!fullName || !/^[^/]+\/[^/]+$/.test(fullName)) throw new ProviderApiError("The delivery named no repository");
  const [owner, name] = fullName.split("/").map(encodeURIComponent);
  return target.provider === "github" ? `/repos/${owner}/${name}` : `/repositories/${owner}/${name}`;
}

/** Calls `path` under the API's base URL; the body, when there is one, is sent as JSON. */
async function call(target: ProviderTarget, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const auth: Record<string, string> =
    target.provider === "gitlab" ? { "private-token": target.token } : { authorization: `Bearer ${target.token}` };
  const response = await fetch(`${base(target)}${path}`, {
    method,
    headers: {
      ...auth,
      accept: target.provider === "github" ? "application/vnd.github+json" : "application/json",
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      "user-agent": "Slipway",
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new ProviderApiError(`${target.provider} API ${method} ${path}: ${response.status} ${text.slice(0, 200)}`);
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export async function postCommitStatus(target: ProviderTarget, commit: string, status: { state: StatusState; url: string | null; description: string }) {
  const description = status.description.slice(0, 140);
  const sha = encodeURIComponent(commit);
  switch (target.provider) {
    case "github":
      await call(target, "POST", `${repoPath(target)}/statuses/${sha}`, {
        state: status.state,
        context: STATUS_CONTEXT,
        description,
        ...(status.url ? { target_url: status.url } : {}),
      });
      return;
    case "gitlab":
      await call(target, "POST", `${repoPath(target)}/statuses/${sha}`, {
        state: gitlabStates[status.state],
        name: STATUS_CONTEXT,
        description,
        ...(status.url ? { target_url: status.url } : {}),
      });
      return;
    case "bitbucket":
      await call(target, "POST", `${repoPath(target)}/commit/${sha}/statuses/build`, {
        state: bitbucketStates[status.state],
        key: STATUS_CONTEXT,
        name: "Slipway preview",
        description,
        url: status.url ?? "https://slipway.invalid/",
      });
      return;
    case "generic":
      throw new ProviderApiError("The generic provider has no API to report to");
  }
}

/** Posts the comment, or edits the one posted before; returns its id. */
export async function upsertComment(target: ProviderTarget, number: number, commentId: string | null, body: string): Promise<string> {
  const path = repoPath(target);
  switch (target.provider) {
    case "github": {
      const answer = commentId
        ? await call(target, "PATCH", `${path}/issues/comments/${encodeURIComponent(commentId)}`, { body })
        : await call(target, "POST", `${path}/issues/${number}/comments`, { body });
      return String(answer.id ?? commentId);
    }
    case "gitlab": {
      const answer = commentId
        ? await call(target, "PUT", `${path}/merge_requests/${number}/notes/${encodeURIComponent(commentId)}`, { body })
        : await call(target, "POST", `${path}/merge_requests/${number}/notes`, { body });
      return String(answer.id ?? commentId);
    }
    case "bitbucket": {
      const answer = commentId
        ? await call(target, "PUT", `${path}/pullrequests/${number}/comments/${encodeURIComponent(commentId)}`, { content: { raw: body } })
        : await call(target, "POST", `${path}/pullrequests/${number}/comments`, { content: { raw: body } });
      return String(answer.id ?? commentId);
    }
    case "generic":
      throw new ProviderApiError("The generic provider has no API to report to");
  }
}

const githubCompare = z.object({ files: z.array(z.object({ filename: z.string(), previous_filename: z.string().optional() })).default([]) });
const gitlabCompare = z.object({ diffs: z.array(z.object({ old_path: z.string(), new_path: z.string() })).default([]) });
const bitbucketDiffstat = z.object({
  values: z.array(z.object({ old: z.object({ path: z.string() }).nullable().optional(), new: z.object({ path: z.string() }).nullable().optional() })),
  next: z.string().optional(),
});
/** GitHub's compare lists at most 300 files: a list that long may be cut. */
const GITHUB_COMPARE_LIMIT = 300;
/** Bitbucket's diffstat comes in pages of up to 500; beyond this many the files count as unknown. */
const BITBUCKET_PAGES = 10;

function parseAnswer<T>(schema: z.ZodType<T>, answer: unknown, what: string): T {
  const parsed = schema.safeParse(answer);
  if (!parsed.success) throw new ProviderApiError(`${what}: answer not understood`);
  return parsed.data;
}

/**
 * The files changed between two commits, renamed files under both names, for a push whose
 * payload does not list them (Bitbucket never does; GitHub and GitLab stop at 20 commits).
 * Null when the provider's answer may be incomplete: an unknown change deploys.
 * GitHub: https://docs.github.com/en/rest/commits/commits#compare-two-commits
 * GitLab: https://docs.gitlab.com/api/repositories/#compare-branches-tags-or-commits
 * Bitbucket: https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commits/#api-repositories-workspace-repo-slug-diffstat-spec-get
 */
export async function changedFilesBetween(target: ProviderTarget, before: string, after: string): Promise<string[] | null> {
  const path = repoPath(target);
  const [from, to] = [encodeURIComponent(before), encodeURIComponent(after)];
  switch (target.provider) {
    case "github": {
      const { files } = parseAnswer(githubCompare, await call(target, "GET", `${path}/compare/${from}...${to}`), "GitHub compare");
      if (files.length >= GITHUB_COMPARE_LIMIT) return null;
      return files.flatMap((f) => (f.previous_filename ? [f.filename, f.previous_filename] : [f.filename]));
    }
    case "gitlab": {
      const { diffs } = parseAnswer(gitlabCompare, await call(target, "GET", `${path}/repository/compare?from=${from}&to=${to}`), "GitLab compare");
      return [...new Set(diffs.flatMap((d) => [d.new_path, d.old_path]))];
    }
    case "bitbucket": {
      const files = new Set<string>();
      let page = `${path}/diffstat/${to}..${from}?pagelen=500`;
      for (let pages = 0; pages < BITBUCKET_PAGES; pages++) {
        const answer = parseAnswer(bitbucketDiffstat, await call(target, "GET", page), "Bitbucket diffstat");
        for (const entry of answer.values) for (const side of [entry.new, entry.old]) if (side) files.add(side.path);
        if (!answer.next) return [...files];
        // Follow the next page only under the same API, where the token may go.
        if (!answer.next.startsWith(`${base(target)}/`)) throw new ProviderApiError("Bitbucket diffstat: the next page is outside its API");
        page = answer.next.slice(base(target).length);
      }
      return null;
    }
    case "generic":
      throw new ProviderApiError("The generic provider has no API to ask");
  }
}
