"use client";

import { useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import type { AppRouter } from "../../server/api/root";
import type { inferRouterOutputs } from "@trpc/server";
import { useTRPC } from "../trpc";

export type Role = inferRouterOutputs<AppRouter>["organization"]["whoami"]["role"];

/** Higher rank, more rights: every role can do what the roles below it can. */
const RANK: Record<Role, number> = { VIEWER: 0, DEVELOPER: 1, ADMIN: 2, OWNER: 3 };

export function roleAtLeast(role: Role | undefined, needed: Role): boolean {
  return role !== undefined && RANK[role] >= RANK[needed];
}

/** The signed-in identity (`organization.whoami`); shared by every caller through the query cache. */
export function useWhoami() {
  const trpc = useTRPC();
  return useQuery(trpc.organization.whoami.queryOptions({}, { staleTime: 60_000 }));
}

/** The caller's role in the current organization, undefined while it loads. */
export function useRole(): Role | undefined {
  return useWhoami().data?.role;
}

/** True when the caller has at least `needed`; false while the role loads (controls appear once known). */
export function useCan(needed: Role): boolean {
  return roleAtLeast(useRole(), needed);
}

/**
 * Renders its children only for members with at least `role`. The server refuses anyway; this
 * keeps controls a member cannot use out of sight (a VIEWER sees no create, edit or deploy button).
 */
export function Can({ role, children, fallback = null }: { role: Role; children: ReactNode; fallback?: ReactNode }) {
  return <>{useCan(role) ? children : fallback}</>;
}
