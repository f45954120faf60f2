import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import { environments, services, variables } from "../db/schema";
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
  const source = await getEnvironment(ctx, parsed.environmentId);
  const project = await getProject(ctx, parsed.projectId ?? source.projectId);
  const rule = await ruleFor(ctx.db, project.id, parsed.name);
  const cluster = await chooseCluster(ctx, parsed.clusterId ?? rule?.clusterId ?? source.clusterId);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const lifetimeSeconds = parsed.lifetimeSeconds ?? rule?.lifetimeSeconds ?? null;
  if (parsed.withData && cluster.id !== source.clusterId) {
    throw new AppError(
      "INVALID",
      `A copy with data must run on its source's cluster ("${source.name}" runs on another one than "${cluster.name}"): clone without data, or on the same cluster`,
    );
  }

  const copy = await ctx.db.transaction(async (tx) => {
    const [environment] = await conflictOnDuplicate(`Environment "${parsed.name}" in project "${project.name}"`, () =>
      tx
        .insert(environments)
        .values({
          organizationId: ctx.actor.organizationId,
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
    const sourceServices = chosenServices(await tx.select().from(services).where(eq(services.environmentId, source.id)), parsed.services, source.name);
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
    const stageCopies = await copyStages(tx, source.id, { organizationId: ctx.actor.organizationId, environmentId: environment!.id });
    // One statement per table: a clone of 20 services and 200 variables is three round trips.
    const created =
      sourceServices.length === 0
        ? []
        : await tx
            .insert(services)
            .values(
              sourceServices.map((s, i) => ({
                organizationId: ctx.actor.organizationId,
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
    const owned = await tx
      .select()
      .from(variables)
      .where(and(eq(variables.organizationId, ctx.actor.organizationId), inArray(variables.targetId, [source.id, ...serviceIds.keys()])));
    if (owned.length > 0) {
      await tx.insert(variables).values(
        owned.map((variable) => {
          const targetId = variable.scope === "ENVIRONMENT" ? environment!.id : serviceIds.get(variable.targetId)!;
          const plaintext = cipher.decrypt(variable.encryptedValue, variableContext(variable.scope, variable.targetId, variable.key));
          return {
            organizationId: ctx.actor.organizationId,
            scope: variable.scope,
            targetId,
            key: variable.key,
            secret: variable.secret,
            encryptedValue: cipher.encrypt(plaintext, variableContext(variable.scope, targetId, variable.key)),
          };
        }),
      );
    }
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

/** The source's services the copy takes: those named (each must exist), or all. */
function chosenServices<S extends { name: string }>(all: S[], names: string[] | undefined, sourceName: string): S[] {
  if (!names) return all;
  const missing = names.filter((name) => !all.some((service) => service.name === name));
  if (missing.length > 0)
    throw new AppError("INVALID", `Environment "${sourceName}" has no service named ${missing.map((name) => `"${name}"`).join(", ")}: nothing was cloned`);
  return all.filter((service) => names.includes(service.name));
}
