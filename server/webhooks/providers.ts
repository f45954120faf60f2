import { createHash } from "node:crypto";
import { z } from "zod";
import type { GitProvider, ProviderRepository } from "../db/schema";
import { repositoryKey } from "../git/repository-url";

/**
 * What each provider's deliveries look like: where the delivery id and the event name are,
 * which events Slipway acts on, and how their payloads become one provider-neutral GitEvent.
 * Payload shapes: GitHub https://docs.github.com/en/webhooks/webhook-events-and-payloads,
 * GitLab https://docs.gitlab.com/user/project/integrations/webhook_events/, Bitbucket Cloud
 * https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/.
 */

type Headers = Record<string, string | string[] | undefined>;
const header = (headers: Headers, name: string) => {
  const value = headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first?.trim() || undefined;
};

/** Headers never stored with a delivery: the GitLab token is the secret itself. */
const secretHeaders = new Set(["x-gitlab-token", "authorization", "proxy-authorization", "cookie"]);

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHARACTERS = /[\u0000-\u001f]/g;

/** The request's headers as stored: lowercase names, secrets removed, values bounded. */
export function storableHeaders(headers: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || secretHeaders.has(name)) continue;
    // Control characters cannot be stored in jsonb text (\u0000) and never belong in a header.
    kept[name] = (Array.isArray(value) ? value.join(", ") : value).replace(CONTROL_CHARACTERS, "").slice(0, 1024);
  }
  return kept;
}

export type DeliveryHead = { deliveryId: string; event: string };

/**
 * The delivery id (what de-duplicates retries) and the event name, from the headers; null when
 * the request lacks them. Bitbucket Cloud sends X-Request-UUID per delivery; X-Hook-UUID names
 * the webhook, not the delivery, so without X-Request-UUID the id is derived from it and the
 * body (a retry of the same body is the same delivery).
 */
export function deliveryHead(provider: GitProvider, headers: Headers, body: Buffer): DeliveryHead | null {
  let deliveryId: string | undefined;
  let event: string | undefined;
  switch (provider) {
    case "github":
      deliveryId = header(headers, "x-github-delivery");
      event = header(headers, "x-github-event");
      break;
    case "gitlab":
      // Idempotency-Key stays the same across GitLab's retries of one event; the event UUID too (older GitLab sends only it).
      deliveryId = header(headers, "idempotency-key") ?? header(headers, "x-gitlab-event-uuid");
      event = header(headers, "x-gitlab-event");
      break;
    case "bitbucket": {
      deliveryId = header(headers, "x-request-uuid") ?? header(headers, "x-request-id");
      const hook = header(headers, "x-hook-uuid");
      if (!deliveryId && hook) deliveryId = `${hook}:${createHash("sha256").update(body).digest("hex")}`;
      event = header(headers, "x-event-key");
      break;
    }
    case "generic":
      deliveryId = header(headers, "x-slipway-delivery");
      event = header(headers, "x-slipway-event");
      break;
  }
  if (!deliveryId || !event || deliveryId.length > 200 || event.length > 100) return null;
  return { deliveryId, event };
}

const githubPrActions = new Set(["opened", "reopened", "synchronize", "closed"]);
const gitlabMrActions = new Set(["open", "reopen", "update", "close", "merge"]);
const bitbucketEvents = new Set(["repo:push", "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected"]);

const field = (payload: unknown, ...path: string[]): unknown => {
  let current = payload;
  for (const key of path) current = current && typeof current === "object" ? (current as Record<string, unknown>)[key] : undefined;
  return current;
};

/** Whether Slipway acts on this event at all; anything else is stored as IGNORED. */
export function actsOn(provider: GitProvider, event: string, payload: unknown): boolean {
  switch (provider) {
    case "github":
      return event === "push" || (event === "pull_request" && githubPrActions.has(String(field(payload, "action"))));
    case "gitlab":
      return event === "Push Hook" || event === "Tag Push Hook" || (event === "Merge Request Hook" && gitlabMrActions.has(String(field(payload, "object_attributes", "action"))));
    case "bitbucket":
      return bitbucketEvents.has(event);
    case "generic":
      return event === "push" || event === "pull_request";
  }
}

/**
 * The repository URLs a payload names, read without validating the rest: what lets the worker
 * pass over deliveries for repositories no service follows without parsing them further.
 */
export function repositoryUrlsOf(provider: GitProvider, payload: unknown): string[] {
  switch (provider) {
    case "github":
      return urls(field(payload, "repository", "clone_url"), field(payload, "repository", "ssh_url"), field(payload, "repository", "git_url"), field(payload, "repository", "html_url"));
    case "gitlab":
      return urls(field(payload, "project", "git_http_url"), field(payload, "project", "git_ssh_url"), field(payload, "project", "web_url"));
    case "bitbucket": {
      const fullName = field(payload, "repository", "full_name");
      return urls(field(payload, "repository", "links", "html", "href"), typeof fullName === "string" ? `https://bitbucket.org/${fullName}` : undefined);
    }
    case "generic":
      return urls(field(payload, "repository"));
  }
}

/** A push of one ref: a branch or a tag moved to `commit` (or was deleted). */
export type PushEvent = {
  kind: "push";
  repositoryUrls: string[];
  providerRepository: ProviderRepository;
  ref: { branch: string } | { tag: string };
  commit: string;
  deleted: boolean;
  headMessage: string | null;
  /** Files added, modified or removed by the pushed commits; null when the provider does not say. */
  changedFiles: string[] | null;
  /** The commit the ref pointed at before the push; null when the push created it (or the provider does not say). */
  before: string | null;
  actor: string;
};

export type PullRequestEvent = {
  kind: "pull_request";
  action: "opened" | "synchronize" | "closed" | "other";
  number: number;
  title: string;
  url: string | null;
  repositoryUrls: string[];
  providerRepository: ProviderRepository;
  baseBranch: string;
  headBranch: string;
  headCommit: string;
  /** The repository the head branch lives in when it is another one (a fork); null when it is the same. */
  headRepositoryUrls: string[] | null;
  merged: boolean;
  actor: string;
};

export type GitEvent = PushEvent | PullRequestEvent;

const ZERO = /^0+$/;
/** What a deployment can pin (engine/protocol/snapshot.ts gitRef): 7 to 40 lowercase hex digits. */
const commitHash = z
  .string()
  .regex(/^[0-9a-f]{7,40}$/i)
  .transform((value) => value.toLowerCase());
const urls = (...values: unknown[]) => values.filter((v): v is string => typeof v === "string" && v.length > 0);

function refOf(ref: string): PushEvent["ref"] | null {
  if (ref.startsWith("refs/heads/")) return { branch: ref.slice("refs/heads/".length) };
  if (ref.startsWith("refs/tags/")) return { tag: ref.slice("refs/tags/".length) };
  return null;
}

function filesOf(commits: { added?: string[]; modified?: string[]; removed?: string[] }[]): string[] {
  return [...new Set(commits.flatMap((c) => [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])]))];
}

const fileCommit = z.object({ added: z.array(z.string()).optional(), modified: z.array(z.string()).optional(), removed: z.array(z.string()).optional() }).passthrough();

const githubRepository = z
  .object({ full_name: z.string(), clone_url: z.string().optional(), ssh_url: z.string().optional(), git_url: z.string().optional(), html_url: z.string().optional() })
  .passthrough();
const githubRepoUrls = (r: z.infer<typeof githubRepository>) => urls(r.clone_url, r.ssh_url, r.git_url, r.html_url);

const githubPush = z.object({
  ref: z.string(),
  before: z.string().optional(),
  after: z.string(),
  deleted: z.boolean().optional(),
  repository: githubRepository,
  head_commit: z.object({ id: z.string(), message: z.string() }).passthrough().nullable().optional(),
  commits: z.array(fileCommit).default([]),
  sender: z.object({ login: z.string() }).passthrough().optional(),
  pusher: z.object({ name: z.string() }).passthrough().optional(),
});

const githubPullRequest = z.object({
  action: z.string(),
  number: z.number().int(),
  pull_request: z
    .object({
      title: z.string(),
      html_url: z.string().optional(),
      merged: z.boolean().nullable().optional(),
      head: z.object({ ref: z.string(), sha: z.string(), repo: githubRepository.nullable() }).passthrough(),
      base: z.object({ ref: z.string(), repo: githubRepository }).passthrough(),
    })
    .passthrough(),
  repository: githubRepository,
  sender: z.object({ login: z.string() }).passthrough().optional(),
});

const gitlabProject = z
  .object({ id: z.number().int(), git_http_url: z.string().optional(), git_ssh_url: z.string().optional(), web_url: z.string().optional(), path_with_namespace: z.string().optional() })
  .passthrough();
const gitlabRepoUrls = (p: z.infer<typeof gitlabProject>) => urls(p.git_http_url, p.git_ssh_url, p.web_url);

const gitlabPush = z.object({
  ref: z.string(),
  before: z.string().optional(),
  after: z.string(),
  checkout_sha: z.string().nullable().optional(),
  user_username: z.string().optional(),
  user_name: z.string().optional(),
  project: gitlabProject,
  commits: z.array(fileCommit.extend({ id: z.string(), message: z.string() })).default([]),
  total_commits_count: z.number().optional(),
});

const gitlabMergeRequest = z.object({
  user: z.object({ username: z.string() }).passthrough().optional(),
  project: gitlabProject,
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
      source: gitlabProject.partial({ id: true }).optional(),
      last_commit: z.object({ id: z.string() }).passthrough(),
      oldrev: z.string().optional(),
    })
    .passthrough(),
});

const bitbucketRepository = z
  .object({ full_name: z.string(), links: z.object({ html: z.object({ href: z.string() }).passthrough().optional() }).passthrough().optional() })
  .passthrough();
const bitbucketRepoUrls = (r: z.infer<typeof bitbucketRepository>) => urls(r.links?.html?.href, `https://bitbucket.org/${r.full_name}`);
const bitbucketActor = z.object({ nickname: z.string().optional(), display_name: z.string().optional(), username: z.string().optional() }).passthrough().optional();
const actorName = (actor: z.infer<typeof bitbucketActor>) => actor?.nickname ?? actor?.username ?? actor?.display_name ?? "unknown";

const bitbucketRefState = z.object({ type: z.string(), name: z.string(), target: z.object({ hash: z.string(), message: z.string().optional() }).passthrough() }).passthrough();
const bitbucketPush = z.object({
  actor: bitbucketActor,
  repository: bitbucketRepository,
  push: z.object({ changes: z.array(z.object({ new: bitbucketRefState.nullable(), old: bitbucketRefState.nullable(), closed: z.boolean().optional() }).passthrough()) }),
});

const bitbucketPullRequest = z.object({
  actor: bitbucketActor,
  repository: bitbucketRepository,
  pullrequest: z
    .object({
      id: z.number().int(),
      title: z.string(),
      state: z.string(),
      links: z.object({ html: z.object({ href: z.string() }).passthrough().optional() }).passthrough().optional(),
      source: z.object({ branch: z.object({ name: z.string() }), commit: z.object({ hash: z.string() }), repository: bitbucketRepository.optional() }).passthrough(),
      destination: z.object({ branch: z.object({ name: z.string() }), repository: bitbucketRepository.optional() }).passthrough(),
    })
    .passthrough(),
});

/** The generic hook's documented payloads (README, "Git integration"). */
const genericPush = z.object({
  repository: z.string().min(1),
  ref: z.string().min(1),
  commit: commitHash,
  message: z.string().optional(),
  changedFiles: z.array(z.string()).optional(),
  actor: z.string().optional(),
  deleted: z.boolean().optional(),
});
const genericPullRequest = z.object({
  action: z.enum(["opened", "reopened", "synchronize", "closed"]),
  number: z.number().int().positive(),
  repository: z.string().min(1),
  baseBranch: z.string().min(1),
  headBranch: z.string().min(1),
  headCommit: commitHash,
  headRepository: z.string().optional(),
  merged: z.boolean().default(false),
  title: z.string().default(""),
  url: z.string().optional(),
  actor: z.string().optional(),
});

export class PayloadError extends Error {}

function parse<T>(schema: z.ZodType<T>, payload: unknown, what: string): T {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PayloadError(`${what} payload not understood: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}

function checked(commit: string, what: string): string {
  const parsed = commitHash.safeParse(commit);
  if (!parsed.success) throw new PayloadError(`${what}: "${commit.slice(0, 80)}" is not a commit hash`);
  return parsed.data;
}

/**
 * The events a delivery carries (a Bitbucket push can move several refs at once). Throws
 * PayloadError when the payload does not have the documented shape.
 */
export function gitEvents(provider: GitProvider, event: string, payload: unknown): GitEvent[] {
  switch (provider) {
    case "github":
      return githubEvents(event, payload);
    case "gitlab":
      return gitlabEvents(event, payload);
    case "bitbucket":
      return bitbucketEvents_(event, payload);
    case "generic":
      return genericEvents(event, payload);
  }
}

/** A push's previous commit, when it names one: all zeros means the ref is new. */
function previousCommit(hash: string | undefined): string | null {
  const parsed = commitHash.safeParse(hash);
  return parsed.success && !ZERO.test(parsed.data) ? parsed.data : null;
}

function githubEvents(event: string, payload: unknown): GitEvent[] {
  if (event === "push") {
    const p = parse(githubPush, payload, "GitHub push");
    const ref = refOf(p.ref);
    if (!ref) return [];
    const deleted = p.deleted === true || ZERO.test(p.after);
    // An annotated tag's `after` is the tag object; head_commit is the commit it points at.
    const commit = deleted ? p.after : checked(p.head_commit?.id ?? p.after, "GitHub push");
    return [
      {
        kind: "push",
        repositoryUrls: githubRepoUrls(p.repository),
        providerRepository: { fullName: p.repository.full_name },
        ref,
        commit,
        deleted,
        headMessage: p.head_commit?.message ?? null,
        // GitHub lists at most 20 commits in a push; beyond that the changed files are unknown.
        changedFiles: p.commits.length >= 20 ? null : filesOf(p.commits),
        before: previousCommit(p.before),
        actor: p.sender?.login ?? p.pusher?.name ?? "unknown",
      },
    ];
  }
  if (event === "pull_request") {
    const p = parse(githubPullRequest, payload, "GitHub pull_request");
    const pr = p.pull_request;
    const headUrls = pr.head.repo ? githubRepoUrls(pr.head.repo) : [];
    const fork = pr.head.repo ? pr.head.repo.full_name.toLowerCase() !== pr.base.repo.full_name.toLowerCase() : true;
    return [
      {
        kind: "pull_request",
        action: p.action === "opened" || p.action === "reopened" ? "opened" : p.action === "synchronize" ? "synchronize" : p.action === "closed" ? "closed" : "other",
        number: p.number,
        title: pr.title,
        url: pr.html_url ?? null,
        repositoryUrls: githubRepoUrls(p.repository),
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
  return [];
}

function gitlabEvents(event: string, payload: unknown): GitEvent[] {
  if (event === "Push Hook" || event === "Tag Push Hook") {
    const p = parse(gitlabPush, payload, `GitLab ${event}`);
    const ref = refOf(p.ref);
    if (!ref) return [];
    const deleted = ZERO.test(p.after);
    const head = p.commits.find((c) => c.id === p.checkout_sha) ?? p.commits.at(-1);
    return [
      {
        kind: "push",
        repositoryUrls: gitlabRepoUrls(p.project),
        providerRepository: { projectId: p.project.id, fullName: p.project.path_with_namespace },
        ref,
        commit: deleted ? p.after : checked(p.checkout_sha ?? p.after, `GitLab ${event}`),
        deleted,
        headMessage: head?.message ?? null,
        // GitLab lists at most 20 commits (total_commits_count says how many there were).
        changedFiles: (p.total_commits_count ?? p.commits.length) > p.commits.length ? null : filesOf(p.commits),
        before: previousCommit(p.before),
        actor: p.user_username ?? p.user_name ?? "unknown",
      },
    ];
  }
  if (event === "Merge Request Hook") {
    const p = parse(gitlabMergeRequest, payload, "GitLab Merge Request Hook");
    const mr = p.object_attributes;
    const fork = mr.source_project_id !== undefined && mr.target_project_id !== undefined && mr.source_project_id !== mr.target_project_id;
    const action =
      mr.action === "open" || mr.action === "reopen"
        ? "opened"
        : mr.action === "update" && mr.oldrev
          ? "synchronize"
          : mr.action === "close" || mr.action === "merge"
            ? "closed"
            : "other";
    return [
      {
        kind: "pull_request",
        action,
        number: mr.iid,
        title: mr.title,
        url: mr.url ?? null,
        repositoryUrls: gitlabRepoUrls(p.project),
        providerRepository: { projectId: p.project.id, fullName: p.project.path_with_namespace },
        baseBranch: mr.target_branch,
        headBranch: mr.source_branch,
        headCommit: checked(mr.last_commit.id, "GitLab Merge Request Hook"),
        headRepositoryUrls: fork ? urls(mr.source?.git_http_url, mr.source?.git_ssh_url, mr.source?.web_url) : null,
        merged: mr.action === "merge" || mr.state === "merged",
        actor: p.user?.username ?? "unknown",
      },
    ];
  }
  return [];
}

function bitbucketEvents_(event: string, payload: unknown): GitEvent[] {
  if (event === "repo:push") {
    const p = parse(bitbucketPush, payload, "Bitbucket repo:push");
    return p.push.changes.flatMap((change): GitEvent[] => {
      const state = change.new ?? change.old;
      if (!state || (state.type !== "branch" && state.type !== "tag")) return [];
      const deleted = change.new === null || change.closed === true;
      return [
        {
          kind: "push",
          repositoryUrls: bitbucketRepoUrls(p.repository),
          providerRepository: { fullName: p.repository.full_name },
          ref: state.type === "branch" ? { branch: state.name } : { tag: state.name },
          commit: deleted ? state.target.hash : checked(state.target.hash, "Bitbucket repo:push"),
          deleted,
          headMessage: change.new?.target.message ?? null,
          // Bitbucket's push payload does not list changed files.
          changedFiles: null,
          before: previousCommit(change.old?.target.hash),
          actor: actorName(p.actor),
        },
      ];
    });
  }
  if (event.startsWith("pullrequest:")) {
    const p = parse(bitbucketPullRequest, payload, `Bitbucket ${event}`);
    const pr = p.pullrequest;
    const source = pr.source.repository?.full_name;
    const fork = source !== undefined && source.toLowerCase() !== p.repository.full_name.toLowerCase();
    const action =
      event === "pullrequest:created" ? "opened" : event === "pullrequest:updated" ? "synchronize" : event === "pullrequest:fulfilled" || event === "pullrequest:rejected" ? "closed" : "other";
    return [
      {
        kind: "pull_request",
        action,
        number: pr.id,
        title: pr.title,
        url: pr.links?.html?.href ?? null,
        repositoryUrls: bitbucketRepoUrls(p.repository),
        providerRepository: { fullName: p.repository.full_name },
        baseBranch: pr.destination.branch.name,
        headBranch: pr.source.branch.name,
        headCommit: checked(pr.source.commit.hash, `Bitbucket ${event}`),
        headRepositoryUrls: fork && pr.source.repository ? bitbucketRepoUrls(pr.source.repository) : null,
        merged: event === "pullrequest:fulfilled",
        actor: actorName(p.actor),
      },
    ];
  }
  return [];
}

function genericEvents(event: string, payload: unknown): GitEvent[] {
  if (event === "push") {
    const p = parse(genericPush, payload, "push");
    const ref = refOf(p.ref) ?? { branch: p.ref };
    return [
      {
        kind: "push",
        repositoryUrls: [p.repository],
        providerRepository: {},
        ref,
        commit: p.commit,
        deleted: p.deleted === true,
        headMessage: p.message ?? null,
        changedFiles: p.changedFiles ?? null,
        before: null,
        actor: p.actor ?? "unknown",
      },
    ];
  }
  if (event === "pull_request") {
    const p = parse(genericPullRequest, payload, "pull_request");
    return [
      {
        kind: "pull_request",
        action: p.action === "reopened" ? "opened" : p.action,
        number: p.number,
        title: p.title,
        url: p.url ?? null,
        repositoryUrls: [p.repository],
        providerRepository: {},
        baseBranch: p.baseBranch,
        headBranch: p.headBranch,
        headCommit: p.headCommit,
        headRepositoryUrls: p.headRepository && repositoryKey(p.headRepository) !== repositoryKey(p.repository) ? [p.headRepository] : null,
        merged: p.merged,
        actor: p.actor ?? "unknown",
      },
    ];
  }
  return [];
}
