import type { ProviderRepository } from "../../db/schema";

/**
 * The provider-neutral events every provider's deliveries are read into: what process.ts and
 * previews.ts act on without knowing which provider sent them.
 */

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
  /**
   * The ref moved to a commit that does not descend from `before` (a force push, a branch rewound
   * to an older commit): the files that changed are unknown, and comparing the two commits (the
   * providers' compare APIs diff from their merge base) would list none of the discarded ones.
   */
  rewritten: boolean;
  /**
   * When the push itself happened, when the provider says (GitHub's `repository.pushed_at`): not a
   * commit's date, which a force push to an older commit or a rebase does not move forward.
   * Orders a redelivered push against later ones (push-order.ts).
   */
  pushedAt: string | null;
  actor: string;
};

export type PullRequestEvent = {
  kind: "pull_request";
  /**
   * "retargeted": the pull request was moved to another base branch (`baseBranch` is the new
   * one), as GitHub's and Gitea's `edited` with a changed base say, or GitLab's `update` with a
   * changed target branch. A title or description edit is "other" (or not acted on at all).
   */
  action: "opened" | "synchronize" | "retargeted" | "closed" | "other";
  /**
   * The delivery may have moved the pull request to another base branch without saying so:
   * Bitbucket sends pullrequest:updated alike for a new commit, a new title or a new destination
   * branch. Its previews are then checked against `baseBranch` as a retarget's are.
   */
  mayBeRetargeted?: boolean;
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
