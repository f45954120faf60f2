import { randomUUID } from "node:crypto";
import { and, arrayContains, eq, sql, type SQL, type SQLWrapper } from "drizzle-orm";
import type { Executor } from "../db/client";
import { preparedOnce } from "../db/prepared";
import { environments, notificationDeliveries, notificationRules, projects } from "../db/schema";
import { addJob } from "../jobs/add-job";
import type { NotificationEvent, NotificationSubject } from "./events";

/**
 * Attempts of one delivery: graphile-worker retries a failed one after exp(attempt) seconds
 * (2.7 s, 7.4 s, 20 s, 55 s, 2.5 min, 6.7 min, 18 min: about half an hour in all).
 */
export const NOTIFICATION_MAX_ATTEMPTS = 8;

type Scope = { organizationId: string } & ({ environmentId: string } | { projectId: string } | { organization: true });

/**
 * Stores a delivery for every enabled rule that follows `event` in its scope, each with the job
 * that sends it, in the caller's transaction: the change and its notifications commit together,
 * and a process that dies afterwards loses nothing (the worker sends them).
 * Scopes: an environment's event matches rules of its project without an environment and rules
 * of that environment; a project's, the project's rules; an organization's (an engine's), every rule.
 */
export async function notify(db: Executor, event: NotificationEvent, scope: Scope, subject: NotificationSubject, at: Date): Promise<number> {
  if ("environmentId" in scope) {
    const [row] = await ruleStatements(db).ofEnvironment.execute({ organizationId: scope.organizationId, environmentId: scope.environmentId, events: [event] });
    return enqueueForEnvironment(db, { ...scope, rules: row?.rules ?? [] }, event, subject, at);
  }
  const follows = and(
    eq(notificationRules.organizationId, scope.organizationId),
    eq(notificationRules.enabled, true),
    arrayContains(notificationRules.events, [event]),
  );
  const rules = await db
    .select({ id: notificationRules.id })
    .from(notificationRules)
    .where(and(follows, "projectId" in scope ? eq(notificationRules.projectId, scope.projectId) : undefined));
  for (const rule of rules) await enqueueDelivery(db, { organizationId: scope.organizationId, ruleId: rule.id }, event, subject, at);
  return rules.length;
}

/** A rule of an environment's event (see environmentRules), with the names its deliveries show. */
export type EnvironmentRule = { event: NotificationEvent; ruleId: string; projectId: string; projectName: string; environmentName: string };

/**
 * The enabled rules that follow any of `events` (a text[]) in an environment (those of its
 * project without an environment, and the environment's own), each with its event and the
 * project's and environment's names, as one JSON array ([] for none), in the events' order. An
 * expression, so that the statement which records a deployment's status change reads them too
 * (issue 17: every deployment's start and end comes here, and a read of its own was a round
 * trip for each, with or without a rule).
 */
export function environmentRules(organizationId: SQLWrapper, environmentId: SQLWrapper, events: SQLWrapper): SQL<EnvironmentRule[]> {
  const rule = sql`json_build_object('event', followed.event, 'ruleId', ${notificationRules.id}, 'projectId', ${environments.projectId},
    'projectName', ${projects.name}, 'environmentName', ${environments.name})`;
  const subquery = sql`(
    select coalesce(json_agg(${rule} order by followed.ord, ${notificationRules.id}), '[]'::json)
    from unnest(${events}::text[]) with ordinality as followed(event, ord)
    join ${environments} on ${environments.id} = ${environmentId}
    join ${projects} on ${projects.id} = ${environments.projectId}
    join ${notificationRules} on ${notificationRules.organizationId} = ${organizationId} and ${notificationRules.enabled}
      and ${notificationRules.events} @> array[followed.event] and ${notificationRules.projectId} = ${environments.projectId}
      and (${notificationRules.environmentId} is null or ${notificationRules.environmentId} = ${environments.id}))`;
  // Nested: drizzle writes the columns of a single-table statement's RETURNING without their
  // table's name (PgDialect.buildSelection), which would make them ambiguous here.
  return sql<EnvironmentRule[]>`${subquery}`;
}

/** Stores a delivery of `event` for each of an environment's rules that follows it (read by environmentRules). */
export async function enqueueForEnvironment(
  db: Executor,
  scope: { organizationId: string; environmentId: string; rules: EnvironmentRule[] },
  event: NotificationEvent,
  subject: NotificationSubject,
  at: Date,
): Promise<number> {
  const matched = scope.rules.filter((rule) => rule.event === event);
  for (const rule of matched) {
    const named: NotificationSubject = {
      project: { id: rule.projectId, name: rule.projectName },
      environment: { id: scope.environmentId, name: rule.environmentName },
      ...subject,
      text: `${rule.projectName}/${rule.environmentName}: ${subject.text}`,
    };
    await enqueueDelivery(db, { organizationId: scope.organizationId, ruleId: rule.ruleId }, event, named, at);
  }
  return matched.length;
}

/** An environment's rules of one event, for notify() (see preparedOnce): one row, its `rules` an array. */
const ruleStatements = preparedOnce((db) => ({
  ofEnvironment: db
    .select({ rules: environmentRules(sql.placeholder("organizationId"), sql.placeholder("environmentId"), sql.placeholder("events")) })
    .from(sql`(values (1)) as one`)
    .prepare("notification_rules_of_environment"),
}));

/** Stores one delivery of a rule and adds the job that sends it. */
export async function enqueueDelivery(
  db: Executor,
  rule: { organizationId: string; ruleId: string },
  event: NotificationEvent | typeof TEST_EVENT,
  subject: NotificationSubject,
  at: Date,
): Promise<string> {
  const id = randomUUID();
  const payload = { id, event, occurredAt: at.toISOString(), organizationId: rule.organizationId, ...subject };
  await db.insert(notificationDeliveries).values({ id, organizationId: rule.organizationId, ruleId: rule.ruleId, event, payload });
  await addJob(db, "send_notification", { deliveryId: id }, { jobKey: `notification:${id}`, maxAttempts: NOTIFICATION_MAX_ATTEMPTS });
  return id;
}

/** The event of `slipway notify test`: sent to one rule whatever events it follows. */
export const TEST_EVENT = "notification.test";
