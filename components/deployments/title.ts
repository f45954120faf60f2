import type { Deployment } from "./steps";

type Titled = Pick<Deployment, "id" | "action" | "serviceIds" | "serviceNames" | "rollbackOf">;

const VERBS = { DEPLOY: "Deploy", STOP: "Stop", RESTART: "Restart", DELETE: "Delete" } as const;

/** How a deployment is named in the dashboard: "deployment 1a2b3c4d" (the crumbs and the rollback links use the same 8 characters). */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

/**
 * A service's name: the deployment's snapshot has the name it had then (and keeps one for a
 * deleted service); the environment's current services name any other; an id as a last resort.
 */
export function serviceName(serviceId: string, snapshotNames: Record<string, string>, currentNames: Record<string, string> = {}): string {
  return snapshotNames[serviceId] ?? currentNames[serviceId] ?? shortId(serviceId);
}

/**
 * What a deployment deploys, in its title (issue 15, item 5): "Deploy web" for one service,
 * "Deploy 3 services" for some, "Deploy environment" for all of them (no service list), and
 * "Roll back web to 1a2b3c4d" for a rollback.
 */
export function deploymentTitle(deployment: Titled, currentNames: Record<string, string> = {}): string {
  const target = deploymentTarget(deployment, currentNames);
  if (deployment.rollbackOf) return `Roll back ${target} to ${shortId(deployment.rollbackOf)}`;
  return `${VERBS[deployment.action]} ${target}`;
}

/** What a deployment acts on, as its title names it: a service's name, "3 services" or "environment". */
export function deploymentTarget(deployment: Omit<Titled, "id" | "action" | "rollbackOf">, currentNames: Record<string, string> = {}): string {
  const ids = deployment.serviceIds;
  return ids === null ? "environment" : ids.length === 1 ? serviceName(ids[0]!, deployment.serviceNames, currentNames) : `${ids.length} services`;
}

type Candidate = Pick<Deployment, "id" | "action" | "status" | "serviceIds">;

/**
 * Whether the history offers "Roll back to this" on a deployment: a successful DEPLOY that a later
 * successful DEPLOY of any of its services has superseded (rolling back to what runs now would
 * only redeploy it). `history` is newest first, as the API lists it.
 */
export function canRollBackTo(deployment: Candidate, history: readonly Candidate[]): boolean {
  if (deployment.action !== "DEPLOY" || deployment.status !== "DEPLOYED") return false;
  const index = history.findIndex((other) => other.id === deployment.id);
  if (index < 0) return false;
  const overlaps = (other: Candidate) =>
    other.serviceIds === null || deployment.serviceIds === null || other.serviceIds.some((id) => deployment.serviceIds!.includes(id));
  return history.slice(0, index).some((newer) => newer.action === "DEPLOY" && newer.status === "DEPLOYED" && overlaps(newer));
}
