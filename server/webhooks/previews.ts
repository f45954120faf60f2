import { and, desc, eq, inArray, isNull, notExists, notInArray } from "drizzle-orm";
import { z } from "zod";
import { terminalStatuses } from "../../engine/protocol/events";
import { branchProblem } from "../../engine/protocol/git-source";
import type { Actor } from "../auth/actor";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext, Services } from "../context";
import type { Executor } from "../db/client";
import { clusters, deployments, environments, gitConnections, gitPreviews, projects, services as servicesTable } from "../db/schema";
import { requestDeployment } from "../deployments/request-deployment";
import { notify } from "../notifications/enqueue";
import { cloneEnvironment } from "../environments/clone-environment";
import { getEnvironment } from "../environments/environments";
import { AppError, isAppError } from "../errors";
import { repositoryKey } from "../git/repository-url";
import { applicationConfigOf, jobConfigOf } from "../services/configs";
import { addJob } from "../jobs/add-job";
import { hostnameLabel, MAX_LABEL_LENGTH, serviceDomain } from "../services/domains";
import { connectionApiToken } from "./connections";
import type { Candidate } from "./candidates";
import { hasApi, postCommitStatus, upsertComment, type ProviderTarget, type PullRequestEvent, type StatusState } from "./providers";

export const setPreviewBlueprintInput = z.object({
  environmentId: z.string().uuid(),
  enabled: z.boolean(),
  /** A preview without a new commit for this long is deleted; kept until its pull request closes when omitted. */
  lifetimeSeconds: z
    .number()
    .int()
    .min(60)
    .max(90 * 24 * 3600)
    .optional(),
});

export async function setPreviewBlueprint(ctx: DomainContext, input: z.infer<typeof setPreviewBlueprintInput>) {
  const environment = await getEnvironment(ctx, input.environmentId);
  if (input.enabled && environment.mode === "PREVIEW") throw new AppError("INVALID", "A preview environment cannot itself be a blueprint for previews");
  const blueprint = input.enabled ? { lifetimeSeconds: input.lifetimeSeconds ?? null } : null;
  return ctx.db.transaction(async (tx) => {
    await tx.update(environments).set({ previewBlueprint: blueprint }).where(eq(environments.id, environment.id));
    await recordAudit(tx, ctx.actor, {
      action: "environment.preview_blueprint",
      targetType: "environment",
      targetId: environment.id,
      changes: { before: environment.previewBlueprint, after: blueprint },
    });
    return { environmentId: environment.id, enabled: blueprint !== null, lifetimeSeconds: blueprint?.lifetimeSeconds ?? null };
  });
}

export async function listPreviews(ctx: DomainContext, input: { environmentId?: string }) {
  return ctx.db
    .select({ preview: gitPreviews, environment: environments })
    .from(gitPreviews)
    .innerJoin(environments, eq(environments.id, gitPreviews.environmentId))
    .where(
      and(
        eq(gitPreviews.organizationId, ctx.actor.organizationId),
        input.environmentId ? eq(gitPreviews.blueprintEnvironmentId, input.environmentId) : undefined,
      ),
    )
    .orderBy(desc(gitPreviews.createdAt));
}

type ConnectionRow = typeof gitConnections.$inferSelect;
export type PreviewOutcome = {
  pullRequest: number;
  action: PullRequestEvent["action"];
  /** A retargeted pull request's new base branch: the previews deleted were of blueprints that do not follow it. */
  baseBranch?: string;
  previews: { blueprintEnvironmentId: string; environmentId: string; name: string; created: boolean; deploymentId: string | null; deleted: boolean }[];
  skipped?: string;
  /**
   * Open previews the delivery did not redeploy: the pull request's head commit, head branch and
   * base branch are those they were last deployed for (a title edit Bitbucket reports as an
   * update, a redelivered `synchronize`).
   */
  unchanged?: { blueprintEnvironmentId: string; environmentId: string; name: string }[];
  /** Blueprints whose preview was not opened, each with why (no name of the preview could be taken): the others' were. */
  skippedBlueprints?: { blueprintEnvironmentId: string; blueprint: string; reason: string }[];
};

/**
 * A pull request against a branch that a blueprint environment's services (from the same
 * repository) follow: opened or reopened clones the blueprint into a PREVIEW environment, points
 * those services at the request's head branch and deploys it at the head commit; a new commit
 * redeploys it and pushes its expiry forward; closing or merging deletes it (closePreviews).
 * Retargeted to another base branch, it is previewed by the blueprints that follow the new base:
 * the previews of those that do not are deleted (they run with that blueprint's secrets and
 * config), and the others are opened or redeployed as for an opened pull request. A blueprint
 * whose preview no name can be found for is skipped, with why, and the others' are still opened.
 * An open preview already deployed for the request's head commit, head branch and base branch is
 * left as it is, its expiry too: it is listed as unchanged.
 */
export async function onPullRequest(services: Services, connection: ConnectionRow, event: PullRequestEvent, candidates: Candidate[]): Promise<PreviewOutcome> {
  const outcome: PreviewOutcome = { pullRequest: event.number, action: event.action, previews: [] };
  if (event.action === "other") return { ...outcome, skipped: "no change to previews" };
  const keys = new Set(event.repositoryUrls.map(repositoryKey).filter((k): k is string => k !== null));
  if (event.headRepositoryUrls !== null) {
    // Code from a fork would run with the blueprint's secrets: not deployed.
    return { ...outcome, skipped: "the head branch is in a fork" };
  }
  const repository = [...keys][0];
  if (!repository) return { ...outcome, skipped: "no repository URL in the delivery" };
  const actor = webhookActor(connection, event.actor);
  const ctx: DomainContext = { ...services, actor };
  if (event.action === "closed") return { ...outcome, previews: await closePreviews(ctx, [...keys], event.number) };
  if (event.action === "retargeted" || event.mayBeRetargeted) {
    // Deleted before the new base's previews are made: when making one fails, none is left
    // running with the old blueprint's secrets meanwhile (the delivery's retry makes it).
    if (event.action === "retargeted") outcome.baseBranch = event.baseBranch;
    const kept = environmentsFollowing(candidates, keys, event.baseBranch);
    const why = ` (the pull request now targets ${event.baseBranch.slice(0, 100)})`;
    outcome.previews.push(...(await closePreviews(ctx, [...keys], event.number, { keep: kept, why })));
  }
  // The head branch becomes the preview's services' branch (what their later deployments clone)
  // and the preview's record: a name git refuses, or would read as an option, is not taken.
  const problem = headBranchProblem(event.headBranch);
  if (problem) return { ...outcome, skipped: `the head branch ${JSON.stringify(event.headBranch.slice(0, 100))} is not a valid git branch name (${problem})` };

  const blueprints = new Map<string, Candidate["environment"]>();
  for (const c of candidates) {
    if (c.environment.previewBlueprint && follows(c, keys, event.baseBranch)) blueprints.set(c.environment.id, c.environment);
  }

  for (const blueprint of blueprints.values()) {
    const [open] = await services.db
      .select()
      .from(gitPreviews)
      .where(
        and(
          eq(gitPreviews.blueprintEnvironmentId, blueprint.id),
          eq(gitPreviews.repository, repository),
          eq(gitPreviews.number, event.number),
          isNull(gitPreviews.closedAt),
        ),
      );
    const preview = open ? { ...open, name: await environmentName(services, open.environmentId) } : await createPreview(ctx, blueprint, repository, event);
    if ("noFreeName" in preview) {
      // Retrying the delivery would find no name either: said here, and the other blueprints go on.
      (outcome.skippedBlueprints ??= []).push({ blueprintEnvironmentId: blueprint.id, blueprint: blueprint.name, reason: preview.noFreeName });
      continue;
    }
    if (open && deployedFor(open, event)) {
      (outcome.unchanged ??= []).push({ blueprintEnvironmentId: blueprint.id, environmentId: preview.environmentId, name: preview.name });
      continue;
    }
    const lifetime = blueprint.previewBlueprint?.lifetimeSeconds ?? null;
    if (lifetime)
      await services.db
        .update(environments)
        .set({ expiresAt: new Date(services.now().getTime() + lifetime * 1000) })
        .where(eq(environments.id, preview.environmentId));

    const own = await services.db.select().from(servicesTable).where(eq(servicesTable.environmentId, preview.environmentId));
    // The services the pull request changes: from its repository, following its base branch (the
    // blueprint's) or, once switched, its head branch. Others (another branch, another repository) stay.
    const fromRepository = own.flatMap((service) => {
      // Jobs from the repository (a seed, a migration) follow the pull request like applications.
      const config = applicationConfigOf(service) ?? jobConfigOf(service);
      const follows =
        config &&
        keys.has(repositoryKey(config.git.url) ?? "") &&
        config.git.ref !== undefined &&
        "branch" in config.git.ref &&
        (config.git.ref.branch === event.baseBranch || config.git.ref.branch === event.headBranch);
      return follows ? [{ ...service, config }] : [];
    });
    for (const service of fromRepository) {
      if (service.config.git.ref && "branch" in service.config.git.ref && service.config.git.ref.branch === event.headBranch) continue;
      await services.db
        .update(servicesTable)
        .set({ config: { ...service.config, git: { ...service.config.git, ref: { branch: event.headBranch } } } })
        .where(eq(servicesTable.id, service.id));
    }
    const refs = Object.fromEntries(fromRepository.map((s) => [s.id, { commit: event.headCommit }]));
    // A new preview deploys whole; a new commit redeploys what it changes. "New" is "never asked
    // to deploy", not "made by this delivery": a retry after a crash between the clone and its
    // first deployment finds the preview open, and must still deploy its databases and the
    // services of other repositories.
    const { deployment } = await requestDeployment(ctx, {
      environmentId: preview.environmentId,
      action: "DEPLOY",
      ...(open && (await everDeployed(services.db, open.environmentId)) ? { serviceIds: fromRepository.map((s) => s.id) } : {}),
      refs,
    });
    // Recorded once the deployment is requested: a retry after a failure before it finds the
    // preview not yet deployed for this head, and deploys it.
    await services.db
      .update(gitPreviews)
      .set({
        headBranch: event.headBranch,
        headCommit: event.headCommit,
        baseBranch: event.baseBranch,
        providerRepository: event.providerRepository,
        connectionId: connection.id,
      })
      .where(eq(gitPreviews.id, preview.id));
    if (connection.encryptedApiToken && hasApi(connection.provider)) {
      await addJob(
        services.db,
        "report_git_status",
        { previewId: preview.id, deploymentId: deployment.id, stage: "requested" },
        { jobKey: gitStatusKey(preview.id), queueName: gitStatusKey(preview.id), maxAttempts: 5 },
      );
    }
    outcome.previews.push({
      blueprintEnvironmentId: blueprint.id,
      environmentId: preview.environmentId,
      name: preview.name,
      created: !open,
      deploymentId: deployment.id,
      deleted: false,
    });
  }
  return outcome;
}

/**
 * Whether the preview's last requested deployment was of this head commit and branch, for this
 * base branch: its record is written once the deployment is requested (a preview recorded but
 * never deployed has no base branch), and a new base may give the preview more services to switch
 * to the head branch.
 */
function deployedFor(preview: typeof gitPreviews.$inferSelect, event: PullRequestEvent): boolean {
  return preview.baseBranch === event.baseBranch && preview.headCommit === event.headCommit && preview.headBranch === event.headBranch;
}

/** Whether the service is from one of the repositories and follows the branch. */
function follows(c: Candidate, repositories: Set<string>, branch: string): boolean {
  return (
    c.repository !== null &&
    repositories.has(c.repository) &&
    c.config.git.ref !== undefined &&
    "branch" in c.config.git.ref &&
    c.config.git.ref.branch === branch
  );
}

/**
 * The environments with a service from the repositories that follows the branch: the blueprints
 * whose previews a pull request against it keeps, whether or not they make previews still (a
 * blueprint disabled since keeps its previews until their pull request closes).
 */
function environmentsFollowing(candidates: Candidate[], repositories: Set<string>, branch: string): Set<string> {
  return new Set(candidates.filter((c) => follows(c, repositories, branch)).map((c) => c.environment.id));
}

/**
 * Closing or merging a pull request deletes every open preview of it, found by the pull request
 * alone: what has become of the blueprint that made one does not matter (disabled since, or
 * following another branch), nor does the request's base branch now (retargeted while Slipway
 * did not hear of it: a lost delivery, or one from before retargets were acted on). A retarget
 * deletes those whose blueprint is not in `keep`. The DELETE is requested before the preview is
 * marked closed, not in one transaction (requestDeployment runs its own): a retry after a failure
 * or a crash between the two finds the preview still open and asks again, merged into the DELETE
 * that waits.
 */
async function closePreviews(
  ctx: DomainContext,
  repositories: string[],
  number: number,
  options: { keep?: Set<string>; why?: string } = {},
): Promise<PreviewOutcome["previews"]> {
  const keep = [...(options.keep ?? [])];
  const open = await ctx.db
    .select({ preview: gitPreviews, name: environments.name })
    .from(gitPreviews)
    .innerJoin(environments, eq(environments.id, gitPreviews.environmentId))
    .where(
      and(
        eq(gitPreviews.organizationId, ctx.actor.organizationId),
        inArray(gitPreviews.repository, repositories),
        eq(gitPreviews.number, number),
        isNull(gitPreviews.closedAt),
        keep.length > 0 ? notInArray(gitPreviews.blueprintEnvironmentId, keep) : undefined,
      ),
    );
  const closed: PreviewOutcome["previews"] = [];
  for (const { preview, name } of open) {
    const { deployment } = await requestDeployment(ctx, { environmentId: preview.environmentId, action: "DELETE" });
    await ctx.db.transaction(async (tx) => {
      const [marked] = await tx
        .update(gitPreviews)
        .set({ closedAt: ctx.now() })
        .where(and(eq(gitPreviews.id, preview.id), isNull(gitPreviews.closedAt)))
        .returning({ id: gitPreviews.id });
      // Closed meanwhile (expired and reaped): that said so already.
      if (!marked) return;
      const blueprint = { id: preview.blueprintEnvironmentId, organizationId: preview.organizationId };
      await notifyPreview(ctx, "preview.deleted", blueprint, { name, number, repository: preview.repository }, tx, options.why);
    });
    closed.push({
      blueprintEnvironmentId: preview.blueprintEnvironmentId,
      environmentId: preview.environmentId,
      name,
      created: false,
      deploymentId: deployment.id,
      deleted: true,
    });
  }
  return closed;
}

/**
 * Why git would refuse the branch name (`git check-ref-format --branch`), or null. The rules are
 * the protocol's, which every service's branch is checked with (engine/protocol/git-source.ts),
 * and `HEAD`, which git refuses as a branch name and they let through.
 */
export function headBranchProblem(branch: string): string | null {
  if (branch === "HEAD") return "git does not take HEAD as a branch name";
  return branchProblem(branch);
}

async function everDeployed(db: Executor, environmentId: string): Promise<boolean> {
  const [row] = await db.select({ id: deployments.id }).from(deployments).where(eq(deployments.environmentId, environmentId)).limit(1);
  return row !== undefined;
}

/** A preview's notification goes to the rules of its blueprint's project (and of the blueprint environment). */
async function notifyPreview(
  services: Services,
  event: "preview.created" | "preview.deleted",
  blueprint: Pick<Candidate["environment"], "id" | "organizationId">,
  preview: { name: string; number: number; repository: string },
  db: Executor = services.db,
  why = "",
) {
  const verb = event === "preview.created" ? "created" : "deleted";
  await notify(
    db,
    event,
    { organizationId: blueprint.organizationId, environmentId: blueprint.id },
    { preview: { number: preview.number, repository: preview.repository }, text: `Preview ${preview.name} of pull request #${preview.number} ${verb}${why}` },
    services.now(),
  );
}

/**
 * The reaper deletes an environment past its expiry: when it is an open preview, the preview is
 * closed (a later push to its pull request makes a new one) and preview.deleted is sent, once
 * (the reaper asks again every minute until the environment is gone; a preview closed with its
 * pull request was reported then).
 */
export async function previewReaped(services: Services, environment: { id: string; name: string }): Promise<void> {
  await services.db.transaction(async (tx) => {
    const [preview] = await tx
      .update(gitPreviews)
      .set({ closedAt: services.now() })
      .where(and(eq(gitPreviews.environmentId, environment.id), isNull(gitPreviews.closedAt)))
      .returning();
    if (!preview) return;
    const [blueprint] = await tx
      .select({ id: environments.id, organizationId: environments.organizationId })
      .from(environments)
      .where(eq(environments.id, preview.blueprintEnvironmentId));
    if (!blueprint) return;
    await notifyPreview(
      services,
      "preview.deleted",
      blueprint,
      { name: environment.name, number: preview.number, repository: preview.repository },
      tx,
      " (expired)",
    );
  });
}

async function environmentName(services: Services, environmentId: string): Promise<string> {
  const [row] = await services.db.select({ name: environments.name }).from(environments).where(eq(environments.id, environmentId));
  return row?.name ?? "";
}

/** A DNS label for the preview: `pr-<n>`, then longer names when another environment has it. */
function previewNames(number: number, blueprint: string, repository: string): string[] {
  const label = (value: string) =>
    value
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/-+/g, "-")
      .slice(0, 40)
      .replace(/^-+|-+$/g, "");
  const repo = repository.split("/").at(-1) ?? "repo";
  return [`pr-${number}`, label(`pr-${number}-${blueprint}`), label(`pr-${number}-${repo}`), label(`pr-${number}-${blueprint}-${Date.now().toString(36)}`)];
}

/**
 * Clones the blueprint under the first free name and records the clone as the pull request's
 * preview, notified with the record. The clone commits on its own (cloneEnvironment writes in
 * its own statement or transaction), so a crash before the record leaves a clone that no preview
 * names, with copies of the blueprint's secrets, which pushes to the blueprint's branch would
 * deploy: the retry takes it over (leftBehind) instead of making `pr-<n>-<blueprint>` beside it.
 * When no name can be taken, nothing is made and `noFreeName` says why.
 */
async function createPreview(ctx: DomainContext, blueprint: Candidate["environment"], repository: string, event: PullRequestEvent) {
  const names = previewNames(event.number, blueprint.name, repository);
  const environment = (await leftBehind(ctx.db, blueprint, names)) ?? (await cloneUnderFreeName(ctx, blueprint, names, event.number));
  if ("noFreeName" in environment) return environment;
  return ctx.db.transaction(async (tx) => {
    const [preview] = await tx
      .insert(gitPreviews)
      .values({
        organizationId: blueprint.organizationId,
        blueprintEnvironmentId: blueprint.id,
        environmentId: environment.id,
        repository,
        providerRepository: event.providerRepository,
        number: event.number,
        headBranch: event.headBranch,
        headCommit: event.headCommit,
      })
      .returning();
    await notifyPreview(ctx, "preview.created", blueprint, { name: environment.name, number: event.number, repository }, tx);
    return { ...preview!, name: environment.name };
  });
}

/**
 * Clones the blueprint under the first of `names` it can have, or says why none (`noFreeName`).
 * A name is refused when it is taken (another environment of the project has it, or a service's
 * hostname would be another service's or a custom domain: cloneEnvironment's CONFLICT names it),
 * or when a service's hostname would be longer than DNS allows. The length is checked here, before
 * cloning, so that the refusal is told apart from cloneEnvironment's other INVALID ones; the next
 * names are tried after either refusal, as a later one may be shorter (`pr-<n>-<repository>` after
 * `pr-<n>-<blueprint>`).
 */
async function cloneUnderFreeName(
  ctx: DomainContext,
  blueprint: Candidate["environment"],
  names: string[],
  number: number,
): Promise<typeof environments.$inferSelect | { noFreeName: string }> {
  const lifetime = blueprint.previewBlueprint?.lifetimeSeconds ?? undefined;
  const tooLong = await labelTooLong(ctx.db, blueprint);
  const refusals: string[] = [];
  for (const name of names) {
    const length = tooLong(name);
    if (length) {
      refusals.push(`${name}: ${length}`);
      continue;
    }
    try {
      const { environment } = await cloneEnvironment(ctx, { environmentId: blueprint.id, name, mode: "PREVIEW", lifetimeSeconds: lifetime, deploy: false });
      return environment;
    } catch (error) {
      if (!isAppError(error) || error.code !== "CONFLICT") throw error;
      refusals.push(`${name}: ${error.message}`);
    }
  }
  return { noFreeName: `No free name for the preview of pull request #${number}: ${refusals.join("; ")}` };
}

/**
 * Why a copy of the blueprint named `name` would give one of its services a hostname DNS refuses
 * (its first label, `<service>-<environment>-<project>`, longer than 63 characters), or null.
 */
async function labelTooLong(db: Executor, blueprint: Candidate["environment"]): Promise<(name: string) => string | null> {
  const [own, [project]] = await Promise.all([
    db.select({ name: servicesTable.name }).from(servicesTable).where(eq(servicesTable.environmentId, blueprint.id)),
    db.select({ name: projects.name }).from(projects).where(eq(projects.id, blueprint.projectId)),
  ]);
  const longest = own.map((service) => service.name).reduce((a, b) => (b.length > a.length ? b : a), "");
  return (name) => {
    if (!longest || !project) return null;
    const label = hostnameLabel(longest, name, project.name);
    if (label.length <= MAX_LABEL_LENGTH) return null;
    return `too long: the hostname of service "${longest}" would begin with "${label}", ${label.length} characters where DNS allows ${MAX_LABEL_LENGTH} in a label`;
  };
}

/**
 * The clone a crashed attempt at this preview left: a PREVIEW copy of the blueprint under one of
 * the preview's names that no preview (open or closed) records. The first name that has one wins,
 * as the attempt tried them in that order.
 */
async function leftBehind(db: Executor, blueprint: Candidate["environment"], names: string[]) {
  const rows = await db
    .select({ id: environments.id, name: environments.name })
    .from(environments)
    .where(
      and(
        eq(environments.projectId, blueprint.projectId),
        eq(environments.clonedFromId, blueprint.id),
        eq(environments.mode, "PREVIEW"),
        inArray(environments.name, names),
        notExists(db.select({ id: gitPreviews.id }).from(gitPreviews).where(eq(gitPreviews.environmentId, environments.id))),
      ),
    );
  return names.map((name) => rows.find((row) => row.name === name)).find((row) => row !== undefined) ?? null;
}

/**
 * The job key and queue of a preview's status reports: a newer deployment's report replaces a
 * waiting one, and two reports of one preview never run at once (the comment is posted once,
 * then edited).
 */
export function gitStatusKey(previewId: string): string {
  return `git_status:${previewId}`;
}

export function webhookActor(connection: Pick<ConnectionRow, "organizationId" | "provider">, login: string): Actor {
  return {
    type: "system",
    id: null,
    label: `${connection.provider}:${login}`.slice(0, 200),
    organizationId: connection.organizationId,
    role: "DEVELOPER",
    origin: "WEBHOOK",
  };
}

/**
 * The report_git_status task's work: a commit status when the preview's deployment is requested,
 * then, once it has ended, the final status and the pull request comment with the preview's
 * URLs. Returns "wait" while the deployment runs (the task checks again shortly).
 */
export async function reportPreviewStatus(
  services: Services,
  input: { previewId: string; deploymentId: string; stage: "requested" | "final" },
): Promise<"wait" | "done"> {
  const [row] = await services.db
    .select({ preview: gitPreviews, connection: gitConnections })
    .from(gitPreviews)
    .innerJoin(gitConnections, eq(gitConnections.id, gitPreviews.connectionId))
    .where(eq(gitPreviews.id, input.previewId));
  if (!row || row.preview.closedAt) return "done";
  const { preview, connection } = row;
  const token = await connectionApiToken(services, connection);
  if (!token) return "done";
  const target: ProviderTarget = { provider: connection.provider, apiBaseUrl: connection.apiBaseUrl, token, repository: preview.providerRepository };
  const [deployment] = await services.db.select().from(deployments).where(eq(deployments.id, input.deploymentId));
  const urls = await previewUrls(services, preview.environmentId);
  const first = urls[0]?.url ?? null;
  if (!deployment) return "done";
  const commit = preview.headCommit;

  if (!terminalStatuses.has(deployment.status)) {
    if (input.stage === "requested") await postCommitStatus(target, commit, { state: "pending", url: first, description: "Deploying the preview" });
    return "wait";
  }
  const state: StatusState = deployment.status === "DEPLOYED" ? "success" : "failure";
  const description =
    state === "success"
      ? "Preview deployed"
      : `Preview ${deployment.status.toLowerCase().replace(/_/g, " ")}${deployment.statusMessage ? `: ${deployment.statusMessage}` : ""}`;
  await postCommitStatus(target, commit, { state, url: first, description });
  const lines = [
    `**Slipway preview** for \`${commit.slice(0, 12)}\`: ${state === "success" ? "deployed" : description}`,
    "",
    ...urls.map((u) => `- ${u.service}: ${u.url}`),
  ];
  const commentId = await upsertComment(target, preview.number, preview.commentId, lines.join("\n"));
  if (commentId !== preview.commentId) await services.db.update(gitPreviews).set({ commentId }).where(eq(gitPreviews.id, preview.id));
  return "done";
}

/** Where each service of an environment is served: its router domain, with the router's port when not 80. */
export async function previewUrls(services: Services, environmentId: string) {
  const [row] = await services.db
    .select({ environment: environments, project: projects, cluster: clusters })
    .from(environments)
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .innerJoin(clusters, eq(clusters.id, environments.clusterId))
    .where(eq(environments.id, environmentId));
  if (!row) return [];
  const port = row.cluster.capabilities.routerPort;
  const own = await services.db.select().from(servicesTable).where(eq(servicesTable.environmentId, environmentId));
  return own
    .filter((s) => s.kind === "APPLICATION")
    .map((s) => ({
      service: s.name,
      url: `http://${serviceDomain(s.name, row.environment.name, row.project.name, row.cluster.domainSuffix)}${port && port !== 80 ? `:${port}` : ""}`,
    }));
}
