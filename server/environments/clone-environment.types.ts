import { z } from "zod";
import { dnsLabel, environmentMode, gitBranch } from "../../engine/protocol/snapshot";

export const cloneCommits = z.enum(["live", "latest"]);
export type CloneCommits = z.infer<typeof cloneCommits>;

/** Which commits a clone deploys when its input names none: its source's live ones, unless it follows another branch. */
export function defaultCloneCommits(branch: string | undefined): CloneCommits {
  return branch ? "latest" : "live";
}

/**
 * `environments.clone`'s input, apart from the domain code so that the dashboard's Clone dialog
 * validates with the same schema (it imports nothing of the server's database or secrets).
 */
export const cloneEnvironmentInput = z.object({
  environmentId: z.string().uuid(),
  name: dnsLabel,
  /** Another project of the organization; the source's by default. */
  projectId: z.string().uuid().optional(),
  clusterId: z.string().uuid().optional(),
  mode: environmentMode.optional(),
  lifetimeSeconds: z
    .number()
    .int()
    .min(60)
    .max(365 * 24 * 3600)
    .optional(),
  /** The names of the source's services to copy, with their service variables; all of them by default. */
  services: z.array(dnsLabel).min(1).max(500).optional(),
  /** The branch every copied service built from git follows instead of its source's (a feature branch for a review copy). */
  branch: gitBranch.optional(),
  /** Copy each database's data into the copy's own database (at its first deployment, on the same cluster). */
  withData: z.boolean().default(false),
  /** Deploy the copy right away. */
  deploy: z.boolean().default(false),
  /**
   * With `deploy`, the commit each copied service built from git deploys: "live", the one its
   * source service's live release was built from (a service that never went live: its branch's
   * latest); "latest", its branch's latest. "live" unless `branch` is given: a copy of what runs,
   * not of what was pushed since (a rollback, a commit that failed to deploy).
   */
  commits: cloneCommits.optional(),
});
