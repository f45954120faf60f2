import { randomUUID } from "node:crypto";
import { and, eq, or, sql } from "drizzle-orm";
import { z } from "zod";
import { auditRow } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import type { Executor } from "../db/client";
import { auditEvents, deploymentStages, environments, serviceHostnames, services, variables, type VariableScope } from "../db/schema";
import { requestDeployment } from "../deployments/request-deployment";
import { getProject } from "../projects/projects";
import { AppError } from "../errors";
import { cipherFor } from "../secrets/organization-cipher";
import { isLocalRepository, localRepositoryRefused } from "../git/local-repositories";
import { databaseConfigOf, gitSourceOf, type StoredConfig } from "../services/configs";
import { allocateDatabasePorts, newDatabaseConfig } from "../services/databases";
import { assertHostnamesFree, hostnameRows, reservingHostnames, type NewServicesPlace } from "../services/domains";
import { assertClusterRunsOn } from "../services/services";
import { environmentVariableScopes, variableContext } from "../variables/variables";
import { getEnvironment, organizationClusters, pickCluster } from "./environments";
import { ruleFor } from "./rules";
import { stagesOf } from "./stages";
import { cloneEnvironmentInput, defaultCloneCommits } from "./clone-environment.types";
import { liveCommits, type LiveCommit } from "./live-commits";

/**
 * Copies an environment, all or nothing (one statement): every service with its configuration, every
 * environment and service variable (secrets included, re-encrypted for their new owner), and
 * the schedule and the deployment stages. What Slipway generates (built-in variables, domains, database ports and
 * credentials) is generated anew for the copy; the copy shares nothing with its source, so
 * either can change or go. With data, each database of the copy starts from a copy of its
 * source's data, taken by the engine at the copy's first deployment.
 */
export async function cloneEnvironment(ctx: DomainContext, input: z.input<typeof cloneEnvironmentInput>) {
  const parsed = cloneEnvironmentInput.parse(input);
  const organizationId = ctx.actor.organizationId;
  const commits = parsed.commits ?? defaultCloneCommits(parsed.branch);
  if (parsed.branch && commits === "live")
    throw new AppError(
      "INVALID",
      `A copy that follows branch "${parsed.branch}" deploys that branch's latest commits, not the ones its source runs: choose the latest commits, or no branch`,
    );
  const pinsLive = parsed.deploy && commits === "live";
  // What the copy is made of, read side by side (issue 17, item 7: a clone was a dozen round
  // trips in a row), within the caller's organization (the stages by environment alone, used only
  // once getEnvironment found it there), outside the write. That is safe: under
  // PostgreSQL's READ COMMITTED each statement of a transaction sees its own snapshot, so reading
  // inside it would not make one consistent picture either. The copy is the source as these
  // reads saw it, as if cloned just before a change made since; what the copy points to (its
  // project and cluster) is held by foreign keys, so one deleted meanwhile fails the write.
  const [source, cipher, sourceRows, clusterCandidates, live] = await Promise.all([
    getEnvironment(ctx, parsed.environmentId),
    cipherFor(ctx.db, ctx.keyring, organizationId),
    readSource(ctx.db, organizationId, parsed.environmentId),
    organizationClusters(ctx),
    pinsLive ? liveCommits(ctx.db, organizationId, parsed.environmentId) : new Map<string, LiveCommit>(),
  ]);
  const sourceServices = chosenServices(sourceRows.services, parsed.services, source.name);
  const chosenIds = new Set(sourceServices.map((s) => s.id));
  const owned = sourceRows.variables.filter((variable) => variable.scope === "ENVIRONMENT" || chosenIds.has(variable.targetId));
  // The copy's ids are chosen here, so that every row of it, and every variable's encryption
  // (bound to its owner's id), is ready before the one statement that writes them.
  const ids = {
    environment: randomUUID(),
    services: new Map(sourceServices.map((s) => [s.id, randomUUID()])),
    stages: new Map(sourceRows.stages.map((stage) => [stage.id, randomUUID()])),
  };

  // The target project and its rules are read while this process re-encrypts the variables
  // (CPU-bound, milliseconds for a few hundred): nothing is written before the checks below.
  const projectId = parsed.projectId ?? source.projectId;
  const [[project, rule], variableCopies] = await Promise.all([
    Promise.all([getProject(ctx, projectId), ruleFor(ctx.db, projectId, parsed.name)]),
    onceQueriesAreSent(() =>
      owned.map((variable) => {
        const targetId = variable.scope === "ENVIRONMENT" ? ids.environment : ids.services.get(variable.targetId)!;
        const plaintext = cipher.decrypt(variable.encryptedValue, variableContext(variable.scope, variable.targetId, variable.key));
        return {
          scope: variable.scope,
          targetId,
          key: variable.key,
          secret: variable.secret,
          encryptedValue: cipher.encrypt(plaintext, variableContext(variable.scope, targetId, variable.key)),
        };
      }),
    ),
  ]);
  const cluster = pickCluster(clusterCandidates, parsed.clusterId ?? rule?.clusterId ?? source.clusterId);
  const lifetimeSeconds = parsed.lifetimeSeconds ?? rule?.lifetimeSeconds ?? null;
  if (parsed.withData && cluster.id !== source.clusterId) {
    throw new AppError(
      "INVALID",
      `A copy with data must run on its source's cluster ("${source.name}" runs on another one than "${cluster.name}"): clone without data, or on the same cluster`,
    );
  }
  // Another cluster may not allow what the source's does: checked on the cluster row read above.
  if (cluster.id !== source.clusterId) {
    for (const s of sourceServices) {
      const database = databaseConfigOf(s);
      const git = gitSourceOf(s);
      if (database) assertClusterRunsOn(cluster, "DATABASE", database.engine);
      else if (git && !cluster.allowLocalRepositories && isLocalRepository(git.url)) throw localRepositoryRefused(cluster.name, git.url);
    }
  }
  // The copies' hostnames are new (the environment's name, maybe the project): none may be one
  // another service (or a custom domain) of the cluster has, or the router would send its requests
  // to one of the two; none may be longer than DNS allows.
  const place: NewServicesPlace = {
    cluster,
    projectId: project.id,
    project: project.name,
    environment: parsed.name,
    services: sourceServices.map((s) => s.name),
    chosen: "environment",
    remedy: "choose another name for the copy",
  };
  await assertHostnamesFree(ctx.db, place);

  /** The copy's rows, written by one statement; `ports` are its databases' ports, in the order of its services. */
  const writeCopy = async (db: Executor, ports: number[]) => {
    const remainingPorts = [...ports];
    const configs = sourceServices.map((s): StoredConfig => {
      const database = databaseConfigOf(s);
      if (database) {
        const port = remainingPorts.shift()!;
        return newDatabaseConfig(cipher, { engine: database.engine, serviceName: s.name, port, ...(parsed.withData ? { copyDataFrom: s.id } : {}) });
      }
      const git = gitSourceOf(s);
      return git && parsed.branch ? { ...s.config, git: { ...git, ref: { branch: parsed.branch } } } : s.config;
    });
    const audit = auditRow(ctx.actor, {
      action: "environment.clone",
      targetType: "environment",
      targetId: ids.environment,
      changes: {
        source: { id: source.id, name: source.name },
        name: parsed.name,
        project: project.name,
        cluster: cluster.name,
        services: sourceServices.map((s) => s.name),
        variables: owned.length,
        stages: sourceRows.stages.length,
        withData: parsed.withData,
        ...(parsed.branch ? { branch: parsed.branch } : {}),
        ...(parsed.deploy ? { commits } : {}),
      },
    });
    const children = [
      sourceRows.stages.length > 0 &&
        db.$with("stage_copies").as(
          db.insert(deploymentStages).values(
            sourceRows.stages.map((stage) => ({
              id: ids.stages.get(stage.id)!,
              organizationId,
              environmentId: ids.environment,
              name: stage.name,
              position: stage.position,
            })),
          ),
        ),
      sourceServices.length > 0 &&
        db.$with("service_copies").as(
          db.insert(services).values(
            sourceServices.map((s, i) => ({
              id: ids.services.get(s.id)!,
              organizationId,
              environmentId: ids.environment,
              name: s.name,
              kind: s.kind,
              config: configs[i]!,
              stageId: s.stageId ? (ids.stages.get(s.stageId) ?? null) : null,
            })),
          ),
        ),
      sourceServices.length > 0 &&
        db
          .$with("hostname_copies")
          .as(db.insert(serviceHostnames).values(hostnameRows(place, new Map(sourceServices.map((s) => [s.name, ids.services.get(s.id)!]))))),
      variableCopies.length > 0 && db.$with("variable_copies", {}).as(insertVariables(organizationId, variableCopies)),
      db.$with("audit_event").as(db.insert(auditEvents).values(audit)),
    ].filter((cte) => cte !== false);
    // One statement is atomic on its own; the foreign keys of the rows it inserts are checked at
    // its end, when the environment it inserts too is there. Every other row is new and owned by
    // the new environment: a duplicate can only be the environment's name, or a hostname another
    // creation took since the check above (reservingHostnames says whose).
    const [environment] = await conflictOnDuplicate(`Environment "${parsed.name}" in project "${project.name}"`, () =>
      db
        .with(...children)
        .insert(environments)
        .values({
          id: ids.environment,
          organizationId,
          projectId: project.id,
          name: parsed.name,
          mode: parsed.mode ?? rule?.mode ?? source.mode,
          clusterId: cluster.id,
          clonedFromId: source.id,
          schedule: source.schedule ?? rule?.schedule ?? null,
          scheduleCheckedAt: ctx.now(),
          // The default of the services that set none (a clone of a dev environment sleeps as it does); kept on any cluster (README).
          sleepAfterMinutes: source.sleepAfterMinutes,
          expiresAt: lifetimeSeconds ? new Date(ctx.now().getTime() + lifetimeSeconds * 1000) : null,
        })
        .returning(),
    );
    return environment!;
  };
  // Databases get ports no other database of the cluster has: chosen under the cluster's lock,
  // which only a transaction holds until the copy is written.
  const databaseCount = sourceServices.filter((s) => databaseConfigOf(s)).length;
  const environment = await reservingHostnames(ctx.db, place, () =>
    databaseCount === 0 ? writeCopy(ctx.db, []) : ctx.db.transaction(async (tx) => writeCopy(tx, await allocateDatabasePorts(tx, cluster.id, databaseCount))),
  );

  // An empty copy has nothing to deploy yet; that is not an error of the clone.
  const deploy = parsed.deploy && sourceServices.length > 0;
  const cause = { kind: "clone", fromEnvironmentId: source.id, fromEnvironment: source.name } as const;
  const deployed = deploy ? deployedCommits(sourceServices, live) : [];
  const refs = Object.fromEntries(deployed.flatMap(({ sourceId, commit }) => (commit ? [[ids.services.get(sourceId)!, { commit }]] : [])));
  const deployment = deploy ? (await requestDeployment(ctx, { environmentId: environment.id, action: "DEPLOY", refs }, cause)).deployment : null;
  return { environment, deployment, commits: deployed.map(({ service, commit }) => ({ service, commit })) };
}

/**
 * What a copy's first deployment builds, per copied service built from git: the commit its source
 * service runs (`live` has it), else null, its branch's latest.
 */
function deployedCommits(sourceServices: { id: string; name: string; kind: string }[], live: ReadonlyMap<string, LiveCommit>) {
  return sourceServices
    .filter((s) => s.kind === "APPLICATION" || s.kind === "JOB")
    .map((s) => ({ sourceId: s.id, service: s.name, commit: live.get(s.id)?.commit ?? null }));
}

/**
 * Runs CPU-bound `work` on a later turn of the event loop, once the queries started before it
 * have gone out on their connections: PostgreSQL answers them meanwhile.
 */
function onceQueriesAreSent<T>(work: () => T): Promise<T> {
  return new Promise((resolve, reject) =>
    setImmediate(() => {
      try {
        resolve(work());
      } catch (error) {
        reject(error);
      }
    }),
  );
}

/**
 * The services of an environment, the variables it and they own, and its stages, in three
 * statements on three connections. Variables are looked up by target (the leading column of
 * their unique index), within the organization.
 */
async function readSource(db: Executor, organizationId: string, environmentId: string) {
  const ofEnvironment = and(eq(services.environmentId, environmentId), eq(services.organizationId, organizationId));
  // Only the columns a copy takes: timestamps cost a Date each to parse, times 200 variables.
  const [sourceServices, owned, stages] = await Promise.all([
    db
      .select({ id: services.id, name: services.name, kind: services.kind, config: services.config, stageId: services.stageId })
      .from(services)
      .where(ofEnvironment),
    db
      .select({ scope: variables.scope, targetId: variables.targetId, key: variables.key, secret: variables.secret, encryptedValue: variables.encryptedValue })
      .from(variables)
      .where(and(eq(variables.organizationId, organizationId), or(...environmentVariableScopes(db, organizationId, environmentId)))),
    stagesOf(db, environmentId),
  ]);
  return { services: sourceServices, variables: owned, stages };
}

/** The copies' variables as one INSERT: a row of arrays rather than six parameters per variable. */
function insertVariables(organizationId: string, rows: { scope: VariableScope; targetId: string; key: string; secret: boolean; encryptedValue: string }[]) {
  return sql`
    insert into ${variables} (organization_id, scope, target_id, key, secret, encrypted_value)
    select ${organizationId}::uuid, v.scope, v.target_id, v.key, v.secret, v.encrypted_value
    from unnest(
      ${sql.param(rows.map((row) => row.scope))}::variable_scope[],
      ${sql.param(rows.map((row) => row.targetId))}::uuid[],
      ${sql.param(rows.map((row) => row.key))}::text[],
      ${sql.param(rows.map((row) => row.secret))}::boolean[],
      ${sql.param(rows.map((row) => row.encryptedValue))}::text[]
    ) as v(scope, target_id, key, secret, encrypted_value)`;
}

/** The source's services the copy takes: those named (each must exist), or all. */
function chosenServices<S extends { name: string }>(all: S[], names: string[] | undefined, sourceName: string): S[] {
  if (!names) return all;
  const missing = names.filter((name) => !all.some((service) => service.name === name));
  if (missing.length > 0)
    throw new AppError("INVALID", `Environment "${sourceName}" has no service named ${missing.map((name) => `"${name}"`).join(", ")}: nothing was cloned`);
  return all.filter((service) => names.includes(service.name));
}
