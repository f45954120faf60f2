import type { Role } from "../auth/can";

export const ROLES = ["OWNER", "ADMIN", "DEVELOPER", "VIEWER"] as const satisfies readonly Role[];

export const ROLE_HELP: Record<Role, string> = {
  OWNER: "Owner: everything, including owners",
  ADMIN: "Admin: members, tokens, clusters, audit",
  DEVELOPER: "Developer: create, configure, deploy",
  VIEWER: "Viewer: read only",
};

export const roleOptions = (roles: readonly Role[] = ROLES) => roles.map((role) => ({ value: role, label: ROLE_HELP[role] }));
