import { and, asc, eq, inArray, sql } from "drizzle-orm";
import type { Executor } from "../db/client";
import {
  apiTokens,
  auditEvents,
  clusters,
  deployments,
  environmentRules,
  environments,
  gitConnections,
  invites,
  memberships,
  notificationRules,
  projects,
  services,
  users,
  webhookDeliveries,
} from "../db/schema";

/** What an audit event points at, as the log shows it: a name, and where it lives while it exists. */
export type AuditLink = { label: string; href: string | null };

type AuditRow = Pick<typeof auditEvents.$inferSelect, "id" | "targetType" | "targetId" | "changes">;

/** The target of an event and, for deployment actions recorded on their environment, the deployment they created. */
export type AuditTargets = { target: AuditLink | null; deployment: AuditLink | null };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** "deployment 1a2b3c4d": the dashboard names deployments by their first 8 characters (components/deployments/title.ts). */
const deploymentLabel = (id: string) => `deployment ${id.slice(0, 8)}`;

/** A variable's audit target id: `SCOPE:ownerId:KEY`, or `SCOPE:ownerId` for an import (server/variables/variables.ts). */
function parseVariableTarget(targetId: string) {
  const [scope, ownerId, key] = targetId.split(":");
  return scope && ownerId ? { scope, ownerId, key: key ?? null } : null;
}

/** A name an event recorded for its target when it was written (create and delete events carry one). */
function recordedName(changes: Record<string, unknown> | null): string | null {
  if (!changes) return null;
  for (const field of ["name", "email", "namePattern", "key"]) {
    const value = changes[field];
    if (typeof value === "string" && value !== "") return value;
  }
  return null;
}

/**
 * Live names and pages of the targets of audit events, in one query per kind of target. A target
 * deleted since keeps the name an event recorded for it (this one, or an earlier one such as its
 * creation), without a link; failing that, its id.
 */
export async function describeAuditTargets(db: Executor, organizationId: string, rows: readonly AuditRow[]): Promise<Map<number, AuditTargets>> {
  const ids = (type: string, extra: string[] = []) => [
    ...new Set([...rows.filter((row) => row.targetType === type && row.targetId).map((row) => row.targetId!), ...extra].filter((id) => UUID.test(id))),
  ];
  const variableOwners = rows
    .flatMap((row) => (row.targetType === "variable" && row.targetId ? [parseVariableTarget(row.targetId)] : []))
    .filter((v) => v !== null);
  const ownersOf = (scope: string) => variableOwners.filter((owner) => owner.scope === scope).map((owner) => owner.ownerId);
  const deploymentIdOf = (row: AuditRow) =>
    row.targetType === "deployment" ? row.targetId : typeof row.changes?.deploymentId === "string" ? row.changes.deploymentId : null;

  const live = new Map<string, AuditLink>();
  const put = (type: string, id: string, label: string, href: string | null) => live.set(`${type}:${id}`, { label, href });
  const when = async <T>(list: string[], query: (list: string[]) => Promise<T[]>) => (list.length > 0 ? query(list) : []);

  const projectIds = ids("project", ownersOf("PROJECT"));
  for (const row of await when(projectIds, (list) =>
    db
      .select({ id: projects.id, name: projects.name })
      .from(projects)
      .where(and(eq(projects.organizationId, organizationId), inArray(projects.id, list))),
  ))
    put("project", row.id, row.name, `/projects/${row.id}`);

  const environmentIds = ids("environment", ownersOf("ENVIRONMENT"));
  for (const row of await when(environmentIds, (list) =>
    db
      .select({ id: environments.id, name: environments.name, project: projects.name })
      .from(environments)
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .where(and(eq(projects.organizationId, organizationId), inArray(environments.id, list))),
  ))
    put("environment", row.id, `${row.project}/${row.name}`, `/environments/${row.id}`);

  const serviceIds = ids("service", ownersOf("SERVICE"));
  for (const row of await when(serviceIds, (list) =>
    db
      .select({ id: services.id, name: services.name, environment: environments.name, project: projects.name })
      .from(services)
      .innerJoin(environments, eq(environments.id, services.environmentId))
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .where(and(eq(projects.organizationId, organizationId), inArray(services.id, list))),
  ))
    put("service", row.id, `${row.project}/${row.environment}/${row.name}`, `/services/${row.id}`);

  const deploymentIds = ids(
    "deployment",
    rows.map(deploymentIdOf).filter((id) => id !== null),
  );
  for (const row of await when(deploymentIds, (list) =>
    db
      .select({ id: deployments.id })
      .from(deployments)
      .where(and(eq(deployments.organizationId, organizationId), inArray(deployments.id, list))),
  ))
    put("deployment", row.id, deploymentLabel(row.id), `/deployments/${row.id}`);

  for (const row of await when(ids("user"), (list) =>
    db
      .select({ id: users.id, email: users.email })
      .from(users)
      .innerJoin(memberships, and(eq(memberships.userId, users.id), eq(memberships.organizationId, organizationId)))
      .where(inArray(users.id, list)),
  ))
    put("user", row.id, row.email, "/settings/members");

  for (const row of await when(ids("invite"), (list) =>
    db
      .select({ id: invites.id, role: invites.role })
      .from(invites)
      .where(and(eq(invites.organizationId, organizationId), inArray(invites.id, list))),
  ))
    put("invite", row.id, `invitation as ${row.role}`, "/settings/members");

  for (const row of await when(ids("api_token"), (list) =>
    db
      .select({ id: apiTokens.id, name: apiTokens.name })
      .from(apiTokens)
      .where(and(eq(apiTokens.organizationId, organizationId), inArray(apiTokens.id, list))),
  ))
    put("api_token", row.id, row.name, "/settings/tokens");

  for (const row of await when(ids("cluster"), (list) =>
    db
      .select({ id: clusters.id, name: clusters.name })
      .from(clusters)
      .where(and(eq(clusters.organizationId, organizationId), inArray(clusters.id, list))),
  ))
    put("cluster", row.id, row.name, "/clusters");

  for (const row of await when(ids("git_connection"), (list) =>
    db
      .select({ id: gitConnections.id, name: gitConnections.name })
      .from(gitConnections)
      .where(and(eq(gitConnections.organizationId, organizationId), inArray(gitConnections.id, list))),
  ))
    put("git_connection", row.id, row.name, "/settings/git");

  for (const row of await when(ids("environment_rule"), (list) =>
    db
      .select({ id: environmentRules.id, namePattern: environmentRules.namePattern, projectId: environmentRules.projectId })
      .from(environmentRules)
      .where(and(eq(environmentRules.organizationId, organizationId), inArray(environmentRules.id, list))),
  ))
    put("environment_rule", row.id, row.namePattern, `/projects/${row.projectId}`);

  for (const row of await when(ids("notification_rule"), (list) =>
    db
      .select({ id: notificationRules.id, name: notificationRules.name, projectId: notificationRules.projectId })
      .from(notificationRules)
      .where(and(eq(notificationRules.organizationId, organizationId), inArray(notificationRules.id, list))),
  ))
    put("notification_rule", row.id, row.name, `/projects/${row.projectId}/notifications`);

  for (const row of await when(ids("webhook_delivery"), (list) =>
    db
      .select({ id: webhookDeliveries.id, deliveryId: webhookDeliveries.deliveryId })
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.organizationId, organizationId), inArray(webhookDeliveries.id, list))),
  ))
    put("webhook_delivery", row.id, `delivery ${row.deliveryId}`, "/settings/git");

  const remembered = await namesRecordedEarlier(
    db,
    organizationId,
    rows.filter((row) => row.targetId && row.targetType !== "variable" && !live.has(`${row.targetType}:${row.targetId}`)),
  );

  const describe = (row: AuditRow): AuditLink | null => {
    if (!row.targetId) return null;
    if (row.targetType === "variable") return describeVariable(row.targetId, live);
    const key = `${row.targetType}:${row.targetId}`;
    const found = live.get(key);
    if (found) return found;
    const label = recordedName(row.changes) ?? remembered.get(key) ?? (row.targetType === "deployment" ? deploymentLabel(row.targetId) : row.targetId);
    return { label, href: null };
  };
  return new Map(
    rows.map((row) => {
      const deploymentId = row.targetType === "deployment" ? null : deploymentIdOf(row);
      const deployment = deploymentId ? (live.get(`deployment:${deploymentId}`) ?? { label: deploymentLabel(deploymentId), href: null }) : null;
      return [row.id, { target: describe(row), deployment }];
    }),
  );
}

const VARIABLE_OWNERS: Record<string, { type: string; tab: string }> = {
  PROJECT: { type: "project", tab: "" },
  ENVIRONMENT: { type: "environment", tab: "" },
  SERVICE: { type: "service", tab: "/variables" },
};

/** "GREETING on shop/dev/web", linked to where the owner's variables are edited. */
function describeVariable(targetId: string, live: Map<string, AuditLink>): AuditLink {
  const parsed = parseVariableTarget(targetId);
  const kind = parsed ? VARIABLE_OWNERS[parsed.scope] : undefined;
  if (!parsed || !kind) return { label: targetId, href: null };
  const owner = live.get(`${kind.type}:${parsed.ownerId}`);
  const what = parsed.key ?? "variables";
  if (!owner) return { label: `${what} of a deleted ${kind.type}`, href: null };
  return { label: `${what} on ${owner.label}`, href: owner.href && `${owner.href}${kind.tab}` };
}

/** For targets gone since: the first name any event recorded for them (their creation's, usually). */
async function namesRecordedEarlier(db: Executor, organizationId: string, rows: readonly AuditRow[]): Promise<Map<string, string>> {
  const targetIds = [...new Set(rows.map((row) => row.targetId!))];
  if (targetIds.length === 0) return new Map();
  const recorded = await db
    .select({ targetType: auditEvents.targetType, targetId: auditEvents.targetId, changes: auditEvents.changes })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.organizationId, organizationId),
        inArray(auditEvents.targetId, targetIds),
        sql`(${auditEvents.changes} ?| array['name', 'email', 'namePattern'])`,
      ),
    )
    .orderBy(asc(auditEvents.id));
  const names = new Map<string, string>();
  for (const row of recorded) {
    const key = `${row.targetType}:${row.targetId}`;
    const name = recordedName(row.changes);
    if (name && !names.has(key)) names.set(key, name);
  }
  return names;
}
