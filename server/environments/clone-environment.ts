import { and, eq, inArray, or, sql } from "drizzle-orm";
import { z } from "zod";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import type { Executor } from "../db/client";
import { environments, services, variables, type VariableScope } from "../db/schema";
import { requestDeployment } from "../deployments/request-deployment";
import { getProject } from "../projects/projects";
import { AppError } from "../errors";
import { cipherFor } from "../secrets/organization-cipher";
import { assertRepositoryAllowed } from "../git/local-repositories";
import { databaseConfigOf, gitSourceOf, type StoredConfig } from "../services/configs";
import { allocateDatabasePort, newDatabaseConfig } from "../services/databases";
import { assertClusterRuns } from "../services/services";
import { variableContext } from "../variables/variables";
import { chooseCluster, getEnvironment } from "./environments";
import { ruleFor } from "./rules";
import { copyStages } from "./stages";
import { cloneEnvironmentInput } from "./clone-environment.types";

/**
 * Copies an environment in one transaction: every service with its configuration, every
 * environment and service variable (secrets included, re-encrypted for their new owner), and
 * the schedule and the deployment stages. What Slipway generates (built-in variables, domains, database ports and
 * credentials) is generated anew for the copy; the copy shares nothing with its source, so
 * either can change or go. With data, each database of the copy starts from a copy of its
 * source's data, taken by the engine at the copy's first deployment.
 */
export async function cloneEnvironment(ctx: DomainContext, input: z.input<typeof cloneEnvironmentInput>) {
  const parsed = cloneEnvironmentInput.parse(input);
  const organizationId = ctx.actor.organizationId;
  // Independent reads side by side (issue 17, item 7: a clone was a dozen round trips in a row).
  // The source's rows are read within the caller's organization and used only once the checks
  // below have passed.
  const [{ source, project, rule, cluster }, cipher, sourceRows] = await Promise.all([
    (async () => {
      const source = await getEnvironment(ctx, parsed.environmentId);
      const project = await getProject(ctx, parsed.projectId ?? source.projectId);
      const rule = await ruleFor(ctx.db, project.id, parsed.name);
      const cluster = await chooseCluster(ctx, parsed.clusterId ?? rule?.clusterId ?? source.clusterId);
      return { source, project, rule, cluster };
    })(),
    cipherFor(ctx.db, ctx.keyring, organizationId),
    readSource(ctx.db, organizationId, parsed.environmentId),
  ]);
  const lifetimeSeconds = parsed.lifetimeSeconds ?? rule?.lifetimeSeconds ?? null;
  if (parsed.withData && cluster.id !== source.clusterId) {
    throw new AppError(
      "INVALID",
      `A copy with data must run on its source's cluster ("${source.name}" runs on another one than "${cluster.name}"): clone without data, or on the same cluster`,
    );
  }
  const sourceServices = chosenServices(sourceRows.services, parsed.services, source.name);
  const chosenIds = new Set(sourceServices.map((s) => s.id));
  const owned = sourceRows.variables.filter((variable) => variable.scope === "ENVIRONMENT" || chosenIds.has(variable.targetId));

  const copy = await ctx.db.transaction(async (tx) => {
    const [environment] = await conflictOnDuplicate(`Environment "${parsed.name}" in project "${project.name}"`, () =>
      tx
        .insert(environments)
        .values({
          organizationId,
          projectId: project.id,
          name: parsed.name,
          mode: parsed.mode ?? rule?.mode ?? source.mode,
          clusterId: cluster.id,
          clonedFromId: source.id,
          schedule: source.schedule ?? rule?.schedule ?? null,
          scheduleCheckedAt: ctx.now(),
          expiresAt: lifetimeSeconds ? new Date(ctx.now().getTime() + lifetimeSeconds * 1000) : null,
        })
        .returning(),
    );
    const ports = new Set<number>();
    const configs: StoredConfig[] = [];
    for (const s of sourceServices) {
      const database = databaseConfigOf(s);
      if (!database) {
        const git = gitSourceOf(s);
        // Another cluster may not allow what the source's does (repositories on its engine's host).
        if (git && cluster.id !== source.clusterId) await assertRepositoryAllowed(tx, cluster.id, git.url);
        configs.push(git && parsed.branch ? { ...s.config, git: { ...git, ref: { branch: parsed.branch } } } : s.config);
        continue;
      }
      if (cluster.id !== source.clusterId) await assertClusterRuns({ db: tx }, cluster.id, "DATABASE", database.engine);
      const port = await allocateDatabasePort(tx, cluster.id, ports);
      ports.add(port);
      configs.push(newDatabaseConfig(cipher, { engine: database.engine, serviceName: s.name, port, ...(parsed.withData ? { copyDataFrom: s.id } : {}) }));
    }
    const stageCopies = await copyStages(tx, source.id, { organizationId, environmentId: environment!.id });
    // One statement per table: a clone of 20 services and 200 variables is three round trips.
    const created =
      sourceServices.length === 0
        ? []
        : await tx
            .insert(services)
            .values(
              sourceServices.map((s, i) => ({
                organizationId,
                environmentId: environment!.id,
                name: s.name,
                kind: s.kind,
                config: configs[i]!,
                stageId: s.stageId ? (stageCopies.get(s.stageId) ?? null) : null,
              })),
            )
            .returning({ id: services.id, name: services.name });
    // Names are unique within an environment: they pair each copy with its source.
    const copyByName = new Map(created.map((c) => [c.name, c.id]));
    const serviceIds = new Map(sourceServices.map((s) => [s.id, copyByName.get(s.name)!]));
    await insertVariables(
      tx,
      organizationId,
      owned.map((variable) => {
        const targetId = variable.scope === "ENVIRONMENT" ? environment!.id : serviceIds.get(variable.targetId)!;
        const plaintext = cipher.decrypt(variable.encryptedValue, variableContext(variable.scope, variable.targetId, variable.key));
        return {
          scope: variable.scope,
          targetId,
          key: variable.key,
          secret: variable.secret,
          encryptedValue: cipher.encrypt(plaintext, variableContext(variable.scope, targetId, variable.key)),
        };
      }),
    );
    await recordAudit(tx, ctx.actor, {
      action: "environment.clone",
      targetType: "environment",
      targetId: environment!.id,
      changes: {
        source: { id: source.id, name: source.name },
        name: parsed.name,
        project: project.name,
        cluster: cluster.name,
        services: sourceServices.map((s) => s.name),
        variables: owned.length,
        stages: stageCopies.size,
        withData: parsed.withData,
        ...(parsed.branch ? { branch: parsed.branch } : {}),
      },
    });
    return { environment: environment!, serviceCount: sourceServices.length };
  });

  // An empty copy has nothing to deploy yet; that is not an error of the clone.
  const deploy = parsed.deploy && copy.serviceCount > 0;
  const cause = { kind: "clone", fromEnvironmentId: source.id, fromEnvironment: source.name } as const;
  const deployment = deploy ? (await requestDeployment(ctx, { environmentId: copy.environment.id, action: "DEPLOY" }, cause)).deployment : null;
  return { environment: copy.environment, deployment };
}

/**
 * The services of an environment and the variables it and they own, in two statements on two
 * connections. Variables are looked up by scope and target, the leading columns of their unique
 * index: by target alone PostgreSQL would read every variable of the organization.
 */
async function readSource(db: Executor, organizationId: string, environmentId: string) {
  const ofEnvironment = and(eq(services.environmentId, environmentId), eq(services.organizationId, organizationId));
  const [sourceServices, owned] = await Promise.all([
    db.select().from(services).where(ofEnvironment),
    db
      .select()
      .from(variables)
      .where(
        and(
          eq(variables.organizationId, organizationId),
          or(
            and(eq(variables.scope, "ENVIRONMENT"), eq(variables.targetId, environmentId)),
            and(eq(variables.scope, "SERVICE"), inArray(variables.targetId, db.select({ id: services.id }).from(services).where(ofEnvironment))),
          ),
        ),
      ),
  ]);
  return { services: sourceServices, variables: owned };
}

/** The copies' variables in one statement: a row of arrays rather than six parameters per variable. */
async function insertVariables(
  tx: Executor,
  organizationId: string,
  rows: { scope: VariableScope; targetId: string; key: string; secret: boolean; encryptedValue: string }[],
) {
  if (rows.length === 0) return;
  await tx.execute(sql`
    insert into ${variables} (organization_id, scope, target_id, key, secret, encrypted_value)
    select ${organizationId}::uuid, v.scope, v.target_id, v.key, v.secret, v.encrypted_value
    from unnest(
      ${sql.param(rows.map((row) => row.scope))}::variable_scope[],
      ${sql.param(rows.map((row) => row.targetId))}::uuid[],
      ${sql.param(rows.map((row) => row.key))}::text[],
      ${sql.param(rows.map((row) => row.secret))}::boolean[],
      ${sql.param(rows.map((row) => row.encryptedValue))}::text[]
    ) as v(scope, target_id, key, secret, encrypted_value)`);
}

/** The source's services the copy takes: those named (each must exist), or all. */
function chosenServices<S extends { name: string }>(all: S[], names: string[] | undefined, sourceName: string): S[] {
  if (!names) return all;
  const missing = names.filter((name) => !all.some((service) => service.name === name));
  if (missing.length > 0)
    throw new AppError("INVALID", `Environment "${sourceName}" has no service named ${missing.map((name) => `"${name}"`).join(", ")}: nothing was cloned`);
  return all.filter((service) => names.includes(service.name));
}
