import { and, arrayOverlaps, asc, desc, eq, inArray, sql } from "drizzle-orm";
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

/**
 * The target of an event and, for deployment actions recorded on their environment, the deployment
 * they created; for an event that acted on some services of an environment (`serviceIds`), those
 * services by name (null when it names none: a whole environment's deployment, or no deployment).
 */
export type AuditTargets = { target: AuditLink | null; deployment: AuditLink | null; services: AuditLink[] | null };

/** How many services a target's label names before it counts the rest ("a, b, c and 2 more in shop/dev"). */
const NAMED_SERVICES = 3;

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
  const actedOn = rows.flatMap(servicesActedOn);

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

  const serviceIds = ids("service", [...ownersOf("SERVICE"), ...actedOn]);
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
  const goneServices = [...new Set(actedOn.filter((id) => UUID.test(id) && !live.has(`service:${id}`)))];
  const goneServiceNames = await namesOfDeletedServices(db, organizationId, goneServices);
  const serviceLink = (id: string): AuditLink => live.get(`service:${id}`) ?? { label: goneServiceNames.get(id) ?? id, href: null };

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
      const acted = servicesActedOn(row);
      const serviceLinks = acted.length > 0 ? acted.map(serviceLink) : null;
      const target = describe(row);
      return [
        row.id,
        {
          target: serviceLinks && target && row.targetType === "environment" ? inEnvironment(serviceLinks, target) : target,
          deployment,
          services: serviceLinks,
        },
      ];
    }),
  );
}

/** The services a deployment action recorded acting on (`serviceIds`; none when it acted on the whole environment). */
function servicesActedOn(row: AuditRow): string[] {
  const ids = row.changes?.serviceIds;
  return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === "string") : [];
}

/** "html in demo/dev", "a, b, c and 2 more in demo/dev": still the environment's link, named by what was acted on in it. */
function inEnvironment(services: readonly AuditLink[], environment: AuditLink): AuditLink {
  const named = services.slice(0, NAMED_SERVICES).map((service) => service.label.split("/").at(-1)!);
  const rest = services.length - named.length;
  return { label: `${named.join(", ")}${rest > 0 ? ` and ${rest} more` : ""} in ${environment.label}`, href: environment.href };
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

/**
 * Names of services deleted since: the name their creation recorded (service.create) or, for the
 * copies a clone made (whose event records the names only), the name a deployment's snapshot gave
 * them while one of their environment's deployments is still kept.
 */
async function namesOfDeletedServices(db: Executor, organizationId: string, serviceIds: readonly string[]): Promise<Map<string, string>> {
  if (serviceIds.length === 0) return new Map();
  const names = await namesRecordedEarlier(
    db,
    organizationId,
    serviceIds.map((id) => ({ id: 0, targetType: "service", targetId: id, changes: null })),
  );
  const byName = new Map([...names].map(([key, name]) => [key.slice("service:".length), name]));
  const missing = serviceIds.filter((id) => !byName.has(id));
  if (missing.length === 0) return byName;
  // The deployments that acted on them by name (the one that deleted them, at least), newest first.
  const snapshots = await db
    .select({
      services: sql<{ id: string; name: string }[]>`(select coalesce(jsonb_agg(jsonb_build_object('id', s->>'id', 'name', s->>'name')), '[]'::jsonb)
        from jsonb_array_elements(${deployments.snapshot}->'services') as s)`,
    })
    .from(deployments)
    .where(and(eq(deployments.organizationId, organizationId), arrayOverlaps(deployments.serviceIds, missing)))
    .orderBy(desc(deployments.createdAt));
  for (const { services: named } of snapshots)
    for (const service of named) if (missing.includes(service.id) && !byName.has(service.id)) byName.set(service.id, service.name);
  return byName;
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
