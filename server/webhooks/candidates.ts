import { and, eq, inArray } from "drizzle-orm";
import type { Executor } from "../db/client";
import { environments, gitPreviews, services } from "../db/schema";
import type { ApplicationConfig, JobConfig } from "../../engine/protocol/snapshot";
import { repositoryKey } from "../git/repository-url";
import { applicationConfigOf, jobConfigOf } from "../services/configs";

/**
 * A service built from git (an APPLICATION or a JOB) a delivery may concern, with its
 * environment and its repository's key. A push deploys the jobs that follow its branch with
 * the applications, so a lifecycle job (a migration) runs before them, like a release phase.
 */
export type Candidate = {
  service: typeof services.$inferSelect;
  /** The service's configuration (its git source is what matters here). */
  config: ApplicationConfig | JobConfig;
  environment: typeof environments.$inferSelect;
  repository: string | null;
  /** Its environment is a preview: driven by pull request events only, never by pushes. */
  inPreview: boolean;
};

/** Every service of the organization built from git, keyed for matching by repository. */
export async function loadCandidates(db: Executor, organizationId: string): Promise<Candidate[]> {
  const rows = await db
    .select({ service: services, environment: environments })
    .from(services)
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .where(and(eq(services.organizationId, organizationId), inArray(services.kind, ["APPLICATION", "JOB"])));
  const previews = new Set(
    (await db.select({ id: gitPreviews.environmentId }).from(gitPreviews).where(eq(gitPreviews.organizationId, organizationId))).map((r) => r.id),
  );
  return rows.flatMap(({ service, environment }) => {
    const config = applicationConfigOf(service) ?? jobConfigOf(service);
    return config ? [{ service, config, environment, repository: repositoryKey(config.git.url), inPreview: previews.has(environment.id) }] : [];
  });
}
