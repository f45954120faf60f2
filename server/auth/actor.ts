import type { Origin } from "../db/schema/deployments";
import type { Role } from "../db/schema/organizations";
import { AppError } from "../errors";

/**
 * Who is acting, for one request: a signed-in user, an API token, or Slipway itself (scheduler,
 * webhooks). Always bound to exactly one organization: every domain query filters by it, so
 * another organization's rows are unreachable by construction.
 */
export type Actor = {
  type: "user" | "token" | "system";
  id: string | null;
  label: string;
  organizationId: string;
  role: Role;
  origin: Origin;
  ip?: string;
  /**
   * The member answering for the actor: the user themself, or the member who created the token.
   * Their current membership bounds what the actor may do (issue 13).
   */
  userId?: string;
};

const rank: Record<Role, number> = { VIEWER: 0, DEVELOPER: 1, ADMIN: 2, OWNER: 3 };

export function hasRole(actor: Pick<Actor, "role">, required: Role): boolean {
  return rank[actor.role] >= rank[required];
}

/** The lower of two roles: what a token may do when its creator's role and its own differ. */
export function lowerRole(a: Role, b: Role): Role {
  return rank[a] <= rank[b] ? a : b;
}

export function assertRole(actor: Pick<Actor, "role">, required: Role): void {
  if (!hasRole(actor, required)) throw new AppError("FORBIDDEN", `This action needs the ${required} role or higher`);
}
