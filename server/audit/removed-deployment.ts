import { and, asc, desc, eq, sql } from "drizzle-orm";
import type { Executor } from "../db/client";
import { auditEvents, environments } from "../db/schema";

/**
 * Why a deployment is not found when the audit log knows it: deleting an environment removes its
 * deployments with it (server/deployments/events.ts), the DELETE deployment that did it included,
 * so whoever follows one of them (the deleting dashboard or `slipway deployment <id>`) hits a 404
 * that should say so. The log keeps the request of every deployment on its environment, and that
 * environment's deletion. Null when the log does not tell (an id never seen, or an environment
 * still there: the deployment went some other way).
 */
export async function removedDeploymentMessage(db: Executor, organizationId: string, deploymentId: string): Promise<string | null> {
  const [requested] = await db
    .select({ environmentId: auditEvents.targetId })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.organizationId, organizationId),
        eq(auditEvents.targetType, "environment"),
        sql`${auditEvents.changes} @> ${JSON.stringify({ deploymentId })}::jsonb`,
      ),
    )
    .orderBy(asc(auditEvents.id))
    .limit(1);
  const environmentId = requested?.environmentId;
  if (!environmentId) return null;
  const [stillThere] = await db.select({ id: environments.id }).from(environments).where(eq(environments.id, environmentId));
  if (stillThere) return null;

  const [named, deletion] = await Promise.all([
    recordedEnvironmentName(db, organizationId, environmentId),
    environmentDeletion(db, organizationId, environmentId),
  ]);
  const environment = named ? `environment ${named}` : "its environment";
  const when = deletion ? ` (requested ${deletion.at.toISOString()} by ${deletion.actor})` : "";
  if (deletion?.deploymentId === deploymentId)
    return `Deployment ${deploymentId} deleted ${environment}${when}: it is done, and the environment's deployments went with it`;
  return `Deployment ${deploymentId} was removed with ${environment}, deleted since${when}`;
}

/** "shop/dev": the project and name the environment's creation (or clone) recorded. */
async function recordedEnvironmentName(db: Executor, organizationId: string, environmentId: string): Promise<string | null> {
  const [created] = await db
    .select({ changes: auditEvents.changes })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.organizationId, organizationId),
        eq(auditEvents.targetType, "environment"),
        eq(auditEvents.targetId, environmentId),
        sql`${auditEvents.changes} ? 'name'`,
      ),
    )
    .orderBy(asc(auditEvents.id))
    .limit(1);
  const { project, name } = created?.changes ?? {};
  if (typeof name !== "string") return null;
  return typeof project === "string" ? `${project}/${name}` : name;
}

/** The latest request to delete the whole environment (a DELETE deployment acting on no list of services). */
async function environmentDeletion(db: Executor, organizationId: string, environmentId: string) {
  const requests = await db
    .select({ changes: auditEvents.changes, at: auditEvents.at, actor: auditEvents.actorLabel })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.organizationId, organizationId),
        eq(auditEvents.action, "deployment.delete"),
        eq(auditEvents.targetType, "environment"),
        eq(auditEvents.targetId, environmentId),
      ),
    )
    .orderBy(desc(auditEvents.id));
  const whole = requests.find((request) => !Array.isArray(request.changes?.serviceIds));
  if (!whole) return null;
  const deploymentId = whole.changes?.deploymentId;
  return { at: whole.at, actor: whole.actor, deploymentId: typeof deploymentId === "string" ? deploymentId : null };
}
