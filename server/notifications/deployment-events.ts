import type { DeploymentStatus } from "../../engine/protocol/events";
import type { Executor } from "../db/client";
import type { deployments } from "../db/schema";
import type { NotificationEvent } from "./events";
import { enqueueForEnvironment, type EnvironmentRule } from "./enqueue";

const failed: ReadonlySet<DeploymentStatus> = new Set(["BUILD_ERROR", "DEPLOYMENT_ERROR"]);
const running: ReadonlySet<DeploymentStatus> = new Set(["BUILDING", "DEPLOYING", "DEPLOYED", "BUILD_ERROR", "DEPLOYMENT_ERROR"]);

/**
 * The notification events of a deployment's status change: started when a deploy (or restart)
 * leaves the queue, succeeded when it is live, failed when any action ends in an error. A change
 * that both starts and ends a deployment (the engine's events arrive in one batch) sends both.
 */
export function deploymentTransitions(action: string, before: DeploymentStatus, after: DeploymentStatus): NotificationEvent[] {
  if (before === after) return [];
  const deploys = action === "DEPLOY" || action === "RESTART";
  const events: NotificationEvent[] = [];
  if (deploys && before === "QUEUED" && running.has(after)) events.push("deployment.started");
  if (deploys && after === "DEPLOYED") events.push("deployment.succeeded");
  if (failed.has(after) && !failed.has(before)) events.push("deployment.failed");
  return events;
}

/**
 * Enqueues the notifications of a deployment's status change, in the caller's transaction, to
 * `rules`: the environment's rules of the change's transitions, read by the statement that
 * recorded it (environmentRules).
 */
export async function notifyDeploymentChange(
  db: Executor,
  before: DeploymentStatus,
  row: typeof deployments.$inferSelect,
  rules: EnvironmentRule[],
  at: Date,
): Promise<void> {
  for (const event of deploymentTransitions(row.action, before, row.status)) {
    const verb = event === "deployment.started" ? "started" : event === "deployment.succeeded" ? "succeeded" : "failed";
    const reason = event === "deployment.failed" && row.statusMessage ? `: ${row.statusMessage}` : "";
    await enqueueForEnvironment(
      db,
      { organizationId: row.organizationId, environmentId: row.environmentId, rules },
      event,
      {
        deployment: { id: row.id, action: row.action, status: row.status, message: row.statusMessage },
        text: `Deployment ${row.id.slice(0, 8)} (${row.action.toLowerCase()}) ${verb}${reason}`,
      },
      at,
    );
  }
}
