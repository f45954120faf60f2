import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { Cron } from "croner";
import {
  applicationConfig,
  containerConfig,
  dnsLabel,
  jobConfig,
  serviceKind,
  type ContainerConfig,
  type GitSource,
  type JobConfig,
} from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import type { Executor } from "../db/client";
import { conflictOnDuplicate } from "../db/errors";
import { clusters, projects, serviceHostnames, services } from "../db/schema";
import { getEnvironment } from "../environments/environments";
import { assertClusterSleeps } from "../clusters/sleep-support";
import { AppError, notFound } from "../errors";
import { cipherFor } from "../secrets/organization-cipher";
import { checkRepository } from "../git/check-repository";
import { assertRepositoryAllowed } from "../git/local-repositories";
import { containerConfigOf, databaseConfigOf, gitSourceOf, jobConfigOf } from "./configs";
import { assertHostnamesFree, hostnameRows, reservingHostnames, type NewServicesPlace } from "./domains";
import {
  checkNewCredentials,
  forValidation,
  gitSourceToStore,
  hideGitCredentials,
  openCredentialsToKeep,
  sealedSource,
  type CredentialsToKeep,
} from "./git-credentials";
import { allocateDatabasePort, databaseInput, hideDatabasePassword, newDatabaseConfig } from "./databases";
import { hideRegistryPassword, registryCredentialsToStore, sealRegistryPassword } from "./registry-credentials";

/**
 * What tells each kind's config apart in a request (the union below tries the shapes in order):
 * a key only that kind has. Not a JOB's `command`: a CONTAINER has one too (its argv), and was
 * refused as "needs an image" for it (issue 15, item 17).
 */
const configMarker = { APPLICATION: "git", CONTAINER: "image", DATABASE: "engine", JOB: "trigger" } as const;
const kindNeeds = { APPLICATION: "a git source", CONTAINER: "an image", DATABASE: "an engine (postgresql or redis)", JOB: "a command and a trigger" } as const;

/**
 * Whether a service's repository is checked before it is saved (server/git/check-repository.ts):
 * it must answer, with the service's credentials, and have the branch; a service without a branch
 * then records the repository's default one. `false` saves it unchecked, for automation that
 * pushes the repository later or a control plane that cannot reach the engine's git host: the
 * engine then meets the repository at deploy time, and clones its default branch when none is set.
 */
const checkRepositoryFlag = z
  .boolean()
  .default(true)
  .describe(
    "Check the repository before saving (it must answer, with the credentials, and have the branch; without a branch its default one is recorded). false: save unchecked, e.g. for a repository pushed later.",
  );

/**
 * An APPLICATION built from git (the default kind), a CONTAINER run from an existing image, a
 * DATABASE (the engine only: Slipway generates its connection) or a JOB. One object rather than
 * a union of objects, so REST clients get one documented shape; the kind and the config are
 * checked against each other.
 */
const serviceToCreate = z
  .object({
    environmentId: z.string().uuid(),
    name: dnsLabel,
    kind: serviceKind.default("APPLICATION"),
    // A job's config is also a valid application config (with fewer keys): jobs are tried first.
    config: z.union([jobConfig, applicationConfig, containerConfig, databaseInput]),
    checkRepository: checkRepositoryFlag,
  })
  .superRefine((input, context) => {
    const marker = configMarker[input.kind];
    const other = Object.entries(configMarker).find(([kind, key]) => kind !== input.kind && kind !== "APPLICATION" && key in input.config);
    if (!(marker in input.config) || other)
      context.addIssue({ code: "custom", path: ["config"], message: `a ${input.kind} service needs ${kindNeeds[input.kind]}` });
    if (input.kind === "JOB" && "trigger" in input.config) checkTrigger(input.config.trigger, context);
  });

/**
 * Sleep is checked on the input as sent: the config schemas of the other kinds drop a key they do
 * not know, so a job or a database given sleepAfterMinutes was created without it, without a word.
 */
export const createServiceInput = z.preprocess((input: z.input<typeof serviceToCreate>, context) => {
  // Typed for callers; from the network, it may be anything.
  const raw: unknown = input;
  const sent = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  const refusal = sleepRefusal(sent.kind ?? "APPLICATION", sent.config);
  if (refusal) context.addIssue({ code: "custom", path: ["config", "sleepAfterMinutes"], message: refusal, input });
  return input;
}, serviceToCreate);

/** croner is the judge of cron expressions and time zones, as on the engine that runs them. */
function checkTrigger(trigger: JobConfig["trigger"], context: z.RefinementCtx) {
  if (trigger.type !== "cron") return;
  try {
    // The time zone is only checked when a date is computed.
    const cron = new Cron(trigger.schedule, { timezone: trigger.timeZone, paused: true });
    cron.nextRun();
    cron.stop();
  } catch (error) {
    context.addIssue({ code: "custom", path: ["config", "trigger"], message: `invalid schedule: ${(error as Error).message}` });
  }
}

const validJobConfig = jobConfig.superRefine((config, context) => checkTrigger(config.trigger, context));

/**
 * A partial configuration, checked against the service's kind once merged; `null` clears an
 * optional setting (back to detection or the default).
 */
export const updateServiceInput = z.object({
  serviceId: z.string().uuid(),
  config: z.record(z.string(), z.unknown()),
  /** Checked only when the git source changes (URL, branch or commit, credentials). */
  checkRepository: checkRepositoryFlag,
});

/** What the API may show of a stored config: registry and database passwords and git credentials stay hidden. */
export function visibleConfig(service: typeof services.$inferSelect) {
  const container = containerConfigOf(service);
  if (container) return hideRegistryPassword(container);
  const database = databaseConfigOf(service);
  if (database) return hideDatabasePassword(database);
  const git = gitSourceOf(service);
  return git ? { ...service.config, git: hideGitCredentials(git) } : service.config;
}

/**
 * A cluster whose engine said what it runs refuses other kinds (and database engines) up
 * front, with the reason; one that never connected is given the benefit of the doubt (its
 * engine then fails the deployment with the reason).
 */
export async function assertClusterRuns(ctx: { db: Executor }, clusterId: string, kind: string, databaseEngine?: string) {
  const [cluster] = await ctx.db.select().from(clusters).where(eq(clusters.id, clusterId));
  assertClusterRunsOn(cluster, kind, databaseEngine);
}

/** assertClusterRuns on a cluster row the caller has read already. */
export function assertClusterRunsOn(cluster: Pick<typeof clusters.$inferSelect, "name" | "capabilities"> | undefined, kind: string, databaseEngine?: string) {
  const kinds = cluster?.capabilities.serviceKinds;
  if (cluster && kinds && !kinds.includes(kind)) {
    throw new AppError("INVALID", `Cluster "${cluster.name}" cannot run ${kind} services: its engine runs ${kinds.join(", ")}`);
  }
  const databases = cluster?.capabilities.databases;
  if (cluster && databaseEngine && kinds && databases && !databases.includes(databaseEngine)) {
    const runs = databases.length > 0 ? `its engine runs ${databases.join(", ")}` : "its engine runs no database engine";
    const hint = databaseEngine === "redis" ? " (install redis-server on the engine's host)" : "";
    throw new AppError("INVALID", `Cluster "${cluster.name}" cannot run ${databaseEngine} databases: ${runs}${hint}`);
  }
}

/**
 * Sleep when idle (issue 16) is for the services that serve through the router, applications and
 * containers: a JOB runs on its triggers, a DATABASE must answer its applications. The reason a
 * service of `kind` cannot take `config`'s `sleepAfterMinutes`, or null when it can (or gives none).
 */
function sleepRefusal(kind: unknown, config: unknown): string | null {
  if ((kind !== "JOB" && kind !== "DATABASE") || typeof config !== "object" || config === null || !("sleepAfterMinutes" in config)) return null;
  const why = kind === "JOB" ? "a job runs on its triggers, not on requests" : "a database must answer its applications at any time";
  return `Only applications and containers sleep when idle: ${why}. Remove sleepAfterMinutes`;
}

export async function listServices(ctx: DomainContext, environmentId: string) {
  const { db, actor } = ctx;
  await getEnvironment(ctx, environmentId);
  return db
    .select()
    .from(services)
    .where(and(eq(services.environmentId, environmentId), eq(services.organizationId, actor.organizationId)))
    .orderBy(asc(services.name));
}

export async function getService({ db, actor }: DomainContext, serviceId: string) {
  const [service] = await db
    .select()
    .from(services)
    .where(and(eq(services.id, serviceId), eq(services.organizationId, actor.organizationId)));
  if (!service) throw notFound("Service");
  return service;
}

export async function createService(ctx: DomainContext, input: z.input<typeof createServiceInput>) {
  const parsed = createServiceInput.parse(input);
  const environment = await getEnvironment(ctx, parsed.environmentId);
  const requested = parsed.config;
  await assertClusterRuns(ctx, environment.clusterId, parsed.kind, "engine" in requested ? requested.engine : undefined);
  await assertClusterSleeps(ctx, environment.clusterId, "sleepAfterMinutes" in requested ? requested.sleepAfterMinutes : undefined);
  const place = await newServicePlace(ctx, environment, parsed.name);
  await assertHostnamesFree(ctx.db, place);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  // The repository's credentials come out of its URL (both checked by the schema already), to be sealed.
  const git = "git" in requested ? gitSourceToStore(null, requested.git) : null;
  let source: GitSource | null = null;
  if ("git" in requested && git) {
    await assertRepositoryAllowed(ctx.db, environment.clusterId, requested.git.url);
    checkNewCredentials(git.credentials);
    // Before the transaction: the repository's host may take the whole timeout to answer.
    source = await withCheckedRepository(ctx, { ...requested.git, url: String(git.git.url) }, git.credentials, parsed.checkRepository);
  }
  return reservingHostnames(ctx.db, place, () =>
    ctx.db.transaction(async (tx) => {
      const config =
        "engine" in requested
          ? newDatabaseConfig(cipher, { engine: requested.engine, serviceName: parsed.name, port: await allocateDatabasePort(tx, environment.clusterId) })
          : "image" in requested
            ? sealRegistryPassword(cipher, requested)
            : "git" in requested && git && source
              ? { ...requested, git: sealedSource(cipher, source, git.credentials) }
              : requested;
      const [service] = await conflictOnDuplicate(`Service "${parsed.name}" in environment "${environment.name}"`, () =>
        tx
          .insert(services)
          .values({ organizationId: ctx.actor.organizationId, environmentId: environment.id, name: parsed.name, kind: parsed.kind, config })
          .returning(),
      );
      await tx.insert(serviceHostnames).values(hostnameRows(place, new Map([[parsed.name, service!.id]])));
      await recordAudit(tx, ctx.actor, {
        action: "service.create",
        targetType: "service",
        targetId: service!.id,
        changes: { name: parsed.name, kind: parsed.kind, config: visibleConfig(service!) },
      });
      return service!;
    }),
  );
}

/** Where a service created in `environment` would be served: its project's name and its cluster's domain. */
async function newServicePlace(
  ctx: DomainContext,
  environment: { projectId: string; name: string; clusterId: string },
  name: string,
): Promise<NewServicesPlace> {
  const [row] = await ctx.db
    .select({ project: projects.name, domainSuffix: clusters.domainSuffix })
    .from(projects)
    .innerJoin(clusters, eq(clusters.id, environment.clusterId))
    .where(eq(projects.id, environment.projectId));
  return {
    cluster: { id: environment.clusterId, domainSuffix: row!.domainSuffix },
    projectId: environment.projectId,
    project: row!.project,
    environment: environment.name,
    services: [name],
    chosen: "service",
    remedy: "choose another name for the service",
  };
}

/**
 * The git source once its repository was checked, when asked and the control plane can see it
 * (check-repository.ts): with the repository's default branch recorded when it names no branch,
 * so that the service follows that branch (and pushes to it deploy it). Unchecked, it names none,
 * and the engine clones the default branch at each deployment.
 */
async function withCheckedRepository<G extends GitSource>(ctx: DomainContext, git: G, credentials: CredentialsToKeep, check: boolean): Promise<G> {
  if (!check) return git;
  const plain = credentials && openCredentialsToKeep(await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId), credentials);
  const result = await checkRepository(ctx.repositoryCheck, git, plain);
  return result.checked && git.ref === undefined && result.defaultBranch !== null ? { ...git, ref: { branch: result.defaultBranch } } : git;
}

/** Whether a write changes where the code comes from: the URL, the branch or commit, or the credentials. */
function gitSourceChanged(stored: GitSource, next: GitSource, credentials: CredentialsToKeep): boolean {
  const credentialsChanged = credentials ? "plain" in credentials : stored.credentials !== undefined;
  return next.url !== stored.url || JSON.stringify(next.ref ?? null) !== JSON.stringify(stored.ref ?? null) || credentialsChanged;
}

export async function updateService(ctx: DomainContext, input: z.infer<typeof updateServiceInput>) {
  const service = await getService(ctx, input.serviceId);
  const merged: Record<string, unknown> = { ...service.config, ...input.config };
  for (const [key, value] of Object.entries(merged)) if (value === null) delete merged[key];
  const refusal = sleepRefusal(service.kind, input.config);
  if (refusal) throw new AppError("INVALID", refusal);
  const sleepAfterMinutes = input.config.sleepAfterMinutes;
  if (typeof sleepAfterMinutes === "number" && sleepAfterMinutes > 0) {
    await assertClusterSleeps(ctx, (await getEnvironment(ctx, service.environmentId)).clusterId, sleepAfterMinutes);
  }
  if (service.kind === "DATABASE") {
    throw new AppError(
      "INVALID",
      "A database's settings cannot change: its engine is fixed and its connection generated. Create another database to change the engine",
    );
  }
  const stored = containerConfigOf(service);
  let config;
  const storedGit = gitSourceOf(service);
  if (storedGit) {
    // A git source given replaces the stored one; its credentials stay only for the same origin (git-credentials.ts).
    const schema = jobConfigOf(service) ? validJobConfig : applicationConfig;
    const given = input.config.git;
    // Not an object (null, say): refused by the schema, with its message.
    if (given !== undefined && (given === null || typeof given !== "object")) schema.parse({ ...merged, git: given });
    const { git, credentials } = gitSourceToStore(storedGit, (given ?? storedGit) as Record<string, unknown>);
    const valid = schema.parse({ ...merged, git: forValidation(git, credentials) });
    checkNewCredentials(credentials);
    const environment = await getEnvironment(ctx, service.environmentId);
    await assertRepositoryAllowed(ctx.db, environment.clusterId, valid.git.url);
    const checked = await withCheckedRepository(ctx, valid.git, credentials, input.checkRepository && gitSourceChanged(storedGit, valid.git, credentials));
    config = { ...valid, git: sealedSource(await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId), checked, credentials) };
  } else if (stored) {
    // The image merges one level deeper, so a new tag keeps the registry credentials (another
    // registry host does not: registry-credentials.ts); a password given in the update is new
    // and sealed now, otherwise the stored one stays sealed.
    // Spread below, a string would become its characters and null nothing: both answered 200 and changed nothing.
    const given = input.config.image;
    if (given !== undefined && (typeof given !== "object" || given === null || Array.isArray(given))) {
      throw new AppError("INVALID", 'config.image: give an object such as { "name": "nginx", "tag": "1.27" }; a container cannot go without an image');
    }
    const image = (given ?? {}) as { name?: unknown; credentials?: { username?: string; password?: string } | null };
    const newPassword = typeof image.credentials?.password === "string";
    const credentials = registryCredentialsToStore(stored.image, image);
    const next = containerConfig.parse({ ...merged, image: { ...stored.image, ...image, credentials } });
    config = newPassword ? sealRegistryPassword(await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId), next) : (next satisfies ContainerConfig);
  } else {
    throw new AppError("INVALID", `A ${service.kind} service has no configuration to change`);
  }
  return ctx.db.transaction(async (tx) => {
    const [updated] = await tx.update(services).set({ config }).where(eq(services.id, service.id)).returning();
    await recordAudit(tx, ctx.actor, {
      action: "service.update",
      targetType: "service",
      targetId: service.id,
      changes: { before: visibleConfig(service), after: visibleConfig(updated!) },
    });
    return updated!;
  });
}
