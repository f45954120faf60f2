import { and, eq, inArray } from "drizzle-orm";
import type { ResolvedVariable, Snapshot } from "../../engine/protocol/snapshot";
import type { DeploymentAction } from "../../engine/protocol/snapshot";
import type { Executor } from "../db/client";
import { clusters, environments, projects, services, variables } from "../db/schema";
import type { OrganizationCipher } from "../secrets/keyring";
import { variableContext } from "../variables/variables";

type ServiceRow = typeof services.$inferSelect;

/** Order of kinds inside a deployment: what others depend on first; reversed to stop and delete. */
const kindOrder = ["DATABASE", "JOB", "CONTAINER", "APPLICATION"] as const;

export function orderServices<T extends { kind: ServiceRow["kind"]; name: string }>(list: T[], action: DeploymentAction): T[] {
  const sorted = [...list].sort((a, b) => kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind) || a.name.localeCompare(b.name));
  return action === "STOP" || action === "DELETE" ? sorted.reverse() : sorted;
}

export function serviceDomain(service: string, environment: string, project: string, suffix: string): string {
  return `${service}-${environment}-${project}.${suffix}`;
}

export function snapshotContext(deploymentId: string): string {
  return `snapshot:${deploymentId}`;
}

/**
 * Renders the full desired state of a deployment. Every variable value in the stored snapshot is
 * sealed with the organization's data key under the deployment's id: the plaintext exists only
 * in the task handed to the engine of the environment's cluster (see openSnapshot).
 */
export async function renderSnapshot(
  db: Executor,
  cipher: OrganizationCipher,
  input: { deploymentId: string; action: DeploymentAction; environmentId: string; services: ServiceRow[] },
): Promise<Snapshot> {
  const [row] = await db
    .select({ environment: environments, project: projects, cluster: clusters })
    .from(environments)
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .innerJoin(clusters, eq(clusters.id, environments.clusterId))
    .where(eq(environments.id, input.environmentId));
  if (!row) throw new Error(`environment ${input.environmentId} vanished while rendering a snapshot`);
  const { environment, project, cluster } = row;

  const targets = [project.id, environment.id, ...input.services.map((s) => s.id)];
  const stored = await db.select().from(variables).where(and(eq(variables.organizationId, environment.organizationId), inArray(variables.targetId, targets)));
  const scopeRank = { PROJECT: 0, ENVIRONMENT: 1, SERVICE: 2 } as const;
  stored.sort((a, b) => scopeRank[a.scope] - scopeRank[b.scope]);
  const seal = (value: string) => cipher.encrypt(value, snapshotContext(input.deploymentId));

  const specs = orderServices(input.services, input.action).map((service) => {
    const domain = serviceDomain(service.name, environment.name, project.name, cluster.domainSuffix);
    const resolved = new Map<string, ResolvedVariable>();
    for (const variable of stored) {
      const applies =
        variable.scope === "SERVICE" ? variable.targetId === service.id : variable.targetId === project.id || variable.targetId === environment.id;
      if (!applies) continue;
      const plaintext = cipher.decrypt(variable.encryptedValue, variableContext(variable.scope, variable.targetId, variable.key));
      resolved.set(variable.key, { key: variable.key, value: seal(plaintext), secret: variable.secret });
    }
    const builtIn: Record<string, string> = {
      SLIPWAY_PROJECT_NAME: project.name,
      SLIPWAY_ENVIRONMENT_NAME: environment.name,
      SLIPWAY_ENVIRONMENT_MODE: environment.mode,
      SLIPWAY_SERVICE_NAME: service.name,
      SLIPWAY_SERVICE_ID: service.id,
      SLIPWAY_DEPLOYMENT_ID: input.deploymentId,
      SLIPWAY_SERVICE_DOMAIN: domain,
    };
    for (const [key, value] of Object.entries(builtIn)) resolved.set(key, { key, value: seal(value), secret: false });
    return {
      id: service.id,
      name: service.name,
      kind: service.kind,
      config: service.config,
      variables: [...resolved.values()],
      domains: [domain],
    };
  });

  return {
    version: 1,
    action: input.action,
    organizationId: environment.organizationId,
    project: { id: project.id, name: project.name },
    environment: { id: environment.id, name: environment.name, mode: environment.mode },
    cluster: { id: cluster.id, domainSuffix: cluster.domainSuffix },
    services: specs,
  };
}

/** The snapshot with plaintext values, for the engine of the deployment's cluster only. */
export function openSnapshot(cipher: OrganizationCipher, deploymentId: string, stored: Snapshot): Snapshot {
  const context = snapshotContext(deploymentId);
  return {
    ...stored,
    services: stored.services.map((service) => ({
      ...service,
      variables: service.variables.map((variable) => ({ ...variable, value: cipher.decrypt(variable.value, context) })),
    })),
  };
}
