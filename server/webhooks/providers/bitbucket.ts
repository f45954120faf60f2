import { createHash } from "node:crypto";
import { z } from "zod";
import type { ProviderAdapter } from "./adapter";
import { ownerAndName, parseAnswer, ProviderApiError, STATUS_CONTEXT, type StatusState } from "./api-client";
import type { GitEvent } from "./events";
import { header, rawHeader } from "./headers";
import { checked, field, parse, previousCommit, urls } from "./payload";
import { hmacMatches, hmacSignature } from "./signing";

/**
 * Bitbucket Cloud. Payloads: https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/.
 * Signature: https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/#Secure-webhooks.
 * API: https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/,
 * /api-group-pullrequests/ (comments), /api-group-commits/#api-repositories-workspace-repo-slug-diffstat-spec-get.
 */

const actedEvents = new Set(["repo:push", "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected"]);

/** The URLs a repository object gives: the one reading of them, for raw and parsed payloads alike. */
function repositoryUrls(repository: unknown): string[] {
  const fullName = field(repository, "full_name");
  return urls(field(repository, "links", "html", "href"), typeof fullName === "string" ? `https://bitbucket.org/${fullName}` : undefined);
}

const repository = z
  .object({
    full_name: z.string(),
    links: z
      .object({ html: z.object({ href: z.string() }).passthrough().optional() })
      .passthrough()
      .optional(),
  })
  .passthrough();
const actor = z.object({ nickname: z.string().optional(), display_name: z.string().optional(), username: z.string().optional() }).passthrough().optional();
const actorName = (a: z.infer<typeof actor>) => a?.nickname ?? a?.username ?? a?.display_name ?? "unknown";

const refState = z
  .object({ type: z.string(), name: z.string(), target: z.object({ hash: z.string(), message: z.string().optional() }).passthrough() })
  .passthrough();
const push = z.object({
  actor,
  repository,
  push: z.object({
    changes: z.array(
      z.object({ new: refState.nullable(), old: refState.nullable(), closed: z.boolean().optional(), forced: z.boolean().optional() }).passthrough(),
    ),
  }),
});

const pullRequest = z.object({
  actor,
  repository,
  pullrequest: z
    .object({
      id: z.number().int(),
      title: z.string(),
      state: z.string(),
      links: z
        .object({ html: z.object({ href: z.string() }).passthrough().optional() })
        .passthrough()
        .optional(),
      source: z.object({ branch: z.object({ name: z.string() }), commit: z.object({ hash: z.string() }), repository: repository.optional() }).passthrough(),
      destination: z.object({ branch: z.object({ name: z.string() }), repository: repository.optional() }).passthrough(),
    })
    .passthrough(),
});

/** A push can move several refs at once: one event per branch or tag. */
function pushEvents(payload: unknown): GitEvent[] {
  const p = parse(push, payload, "Bitbucket repo:push");
  return p.push.changes.flatMap((change): GitEvent[] => {
    const state = change.new ?? change.old;
    if (!state || (state.type !== "branch" && state.type !== "tag")) return [];
    const deleted = change.new === null || change.closed === true;
    return [
      {
        kind: "push",
        repositoryUrls: repositoryUrls(p.repository),
        providerRepository: { fullName: p.repository.full_name },
        ref: state.type === "branch" ? { branch: state.name } : { tag: state.name },
        commit: deleted ? state.target.hash : checked(state.target.hash, "Bitbucket repo:push"),
        deleted,
        headMessage: change.new?.target.message ?? null,
        // Bitbucket's push payload does not list changed files.
        changedFiles: null,
        before: previousCommit(change.old?.target.hash),
        rewritten: change.forced === true,
        // The payload has no time of the push, only of commits.
        pushedAt: null,
        actor: actorName(p.actor),
      },
    ];
  });
}

function pullRequestEvents(event: string, payload: unknown): GitEvent[] {
  const p = parse(pullRequest, payload, `Bitbucket ${event}`);
  const pr = p.pullrequest;
  const source = pr.source.repository?.full_name;
  const fork = source !== undefined && source.toLowerCase() !== p.repository.full_name.toLowerCase();
  const action =
    event === "pullrequest:created"
      ? "opened"
      : event === "pullrequest:updated"
        ? "synchronize"
        : event === "pullrequest:fulfilled" || event === "pullrequest:rejected"
          ? "closed"
          : "other";
  return [
    {
      kind: "pull_request",
      action,
      number: pr.id,
      title: pr.title,
      url: pr.links?.html?.href ?? null,
      repositoryUrls: repositoryUrls(p.repository),
      providerRepository: { fullName: p.repository.full_name },
      baseBranch: pr.destination.branch.name,
      headBranch: pr.source.branch.name,
      headCommit: checked(pr.source.commit.hash, `Bitbucket ${event}`),
      headRepositoryUrls: fork && pr.source.repository ? repositoryUrls(pr.source.repository) : null,
      // pullrequest:updated is Bitbucket's one event for a new commit, title or destination
      // branch, and does not say which: a new destination moves the previews (previews.ts).
      mayBeRetargeted: event === "pullrequest:updated",
      merged: event === "pullrequest:fulfilled",
      actor: actorName(p.actor),
    },
  ];
}

const states: Record<StatusState, string> = { pending: "INPROGRESS", success: "SUCCESSFUL", failure: "FAILED" };
const diffstat = z.object({
  values: z.array(z.object({ old: z.object({ path: z.string() }).nullable().optional(), new: z.object({ path: z.string() }).nullable().optional() })),
  next: z.string().optional(),
});
/** The diffstat comes in pages of up to 500; beyond this many the files count as unknown. */
const DIFFSTAT_PAGES = 10;

export const bitbucket: ProviderAdapter = {
  name: "bitbucket",
  verifySignature: (secret, body, headers) => hmacMatches(secret, body, rawHeader(headers, "x-hub-signature")),
  signatureHeaders: (secret, body) => ({ "x-hub-signature": hmacSignature(secret, body) }),
  /**
   * X-Request-UUID is sent per delivery; X-Hook-UUID names the webhook, not the delivery, so
   * without X-Request-UUID the id is derived from it and the body (a retry of the same body is
   * the same delivery).
   */
  deliveryHead(headers, body) {
    const hook = header(headers, "x-hook-uuid");
    const deliveryId =
      header(headers, "x-request-uuid") ?? header(headers, "x-request-id") ?? (hook ? `${hook}:${createHash("sha256").update(body).digest("hex")}` : undefined);
    return { deliveryId, event: header(headers, "x-event-key") };
  },
  actsOn: (event) => actedEvents.has(event),
  repositoryUrls: (payload) => repositoryUrls(field(payload, "repository")),
  events(event, payload) {
    if (event === "repo:push") return pushEvents(payload);
    if (event.startsWith("pullrequest:")) return pullRequestEvents(event, payload);
    return [];
  },
  api: {
    defaultBaseUrl: "https://api.bitbucket.org/2.0",
    requestHeaders: (token) => ({ authorization: `Bearer ${token}`, accept: "application/json" }),
    repositoryPath: (repository) => `/repositories/${ownerAndName(repository)}`,
    commitStatus: (commit, status) => ({
      method: "POST",
      path: `/commit/${encodeURIComponent(commit)}/statuses/build`,
      // Bitbucket requires a URL on every status; a preview without one links nowhere.
      body: {
        state: states[status.state],
        key: STATUS_CONTEXT,
        name: "Slipway preview",
        description: status.description,
        url: status.url ?? "https://slipway.invalid/",
      },
    }),
    comment: (number, commentId, body) =>
      commentId
        ? { method: "PUT", path: `/pullrequests/${number}/comments/${encodeURIComponent(commentId)}`, body: { content: { raw: body } } }
        : { method: "POST", path: `/pullrequests/${number}/comments`, body: { content: { raw: body } } },
    async changedFilesBetween(client, before, after) {
      const files = new Set<string>();
      let page = `${client.repository}/diffstat/${encodeURIComponent(after)}..${encodeURIComponent(before)}?pagelen=500`;
      for (let pages = 0; pages < DIFFSTAT_PAGES; pages++) {
        const answer = parseAnswer(diffstat, await client.call("GET", page), "Bitbucket diffstat");
        for (const entry of answer.values) for (const side of [entry.new, entry.old]) if (side) files.add(side.path);
        if (!answer.next) return [...files];
        // Follow the next page only under the same API, where the token may go.
        if (!answer.next.startsWith(`${client.base}/`)) throw new ProviderApiError("Bitbucket diffstat: the next page is outside its API");
        page = answer.next.slice(client.base.length);
      }
      return null;
    },
  },
};
