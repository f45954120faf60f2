import { z } from "zod";
import { repositoryKey } from "../../git/repository-url";
import type { ProviderAdapter } from "./adapter";
import { header, rawHeader } from "./headers";
import { commitHash, field, parse, previousCommit, refOf, urls } from "./payload";
import { hmacMatches, hmacSignature } from "./signing";

/**
 * The generic hook: Slipway's own documented payloads (README, "Git integration") for any git
 * server a script can post from, signed with `X-Slipway-Signature: sha256=<HMAC-SHA256 of the
 * body>`. It has no API to report back to.
 */

const push = z.object({
  repository: z.string().min(1),
  ref: z.string().min(1),
  commit: commitHash,
  /** The commit the branch was at before the push: orders a push redelivered late (push-order.ts). */
  before: commitHash.optional(),
  message: z.string().optional(),
  changedFiles: z.array(z.string()).optional(),
  actor: z.string().optional(),
  deleted: z.boolean().optional(),
});

const pullRequest = z.object({
  // "retargeted": the pull request now targets `baseBranch`, another branch than before.
  action: z.enum(["opened", "reopened", "synchronize", "retargeted", "closed"]),
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

export const generic: ProviderAdapter = {
  name: "generic",
  verifySignature: (secret, body, headers) => hmacMatches(secret, body, rawHeader(headers, "x-slipway-signature")),
  signatureHeaders: (secret, body) => ({ "x-slipway-signature": hmacSignature(secret, body) }),
  deliveryHead: (headers) => ({ deliveryId: header(headers, "x-slipway-delivery"), event: header(headers, "x-slipway-event") }),
  actsOn: (event) => event === "push" || event === "pull_request",
  // The payload names its repository by one URL, as a string.
  repositoryUrls: (payload) => urls(field(payload, "repository")),
  events(event, payload) {
    if (event === "push") {
      const p = parse(push, payload, "push");
      return [
        {
          kind: "push",
          repositoryUrls: [p.repository],
          providerRepository: {},
          // A bare name is a branch.
          ref: refOf(p.ref) ?? { branch: p.ref },
          commit: p.commit,
          deleted: p.deleted === true,
          headMessage: p.message ?? null,
          changedFiles: p.changedFiles ?? null,
          before: previousCommit(p.before),
          // Unknown: its changedFiles are whatever the sender says.
          rewritten: false,
          pushedAt: null,
          actor: p.actor ?? "unknown",
        },
      ];
    }
    if (event === "pull_request") {
      const p = parse(pullRequest, payload, "pull_request");
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
  },
  api: null,
};
