import { randomUUID } from "node:crypto";
import { and, arrayContains, eq, isNull, or, sql } from "drizzle-orm";
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
    // The rules with the environment's project and names, in one statement (issue 17): every
    // deployment's start and end comes here, and an organization without a rule costs one read.
    const matched = await ruleStatements(db).ofEnvironment.execute({ organizationId: scope.organizationId, environmentId: scope.environmentId, event });
    for (const row of matched) {
      const named: NotificationSubject = {
        project: { id: row.projectId, name: row.projectName },
        environment: { id: scope.environmentId, name: row.environmentName },
        ...subject,
        text: `${row.projectName}/${row.environmentName}: ${subject.text}`,
      };
      await enqueueDelivery(db, { organizationId: scope.organizationId, ruleId: row.ruleId }, event, named, at);
    }
    return matched.length;
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

/** The rules of an environment's event, with its project and names: every deployment's start and end reads them (see preparedOnce). */
const ruleStatements = preparedOnce((db) => ({
  ofEnvironment: db
    .select({ ruleId: notificationRules.id, projectId: environments.projectId, environmentName: environments.name, projectName: projects.name })
    .from(environments)
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .innerJoin(
      notificationRules,
      and(
        eq(notificationRules.organizationId, sql.placeholder("organizationId")),
        eq(notificationRules.enabled, true),
        sql`${notificationRules.events} @> array[${sql.placeholder("event")}::text]`,
        eq(notificationRules.projectId, environments.projectId),
        or(isNull(notificationRules.environmentId), eq(notificationRules.environmentId, environments.id)),
      ),
    )
    .where(eq(environments.id, sql.placeholder("environmentId")))
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
