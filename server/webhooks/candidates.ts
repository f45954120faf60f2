import { and, eq } from "drizzle-orm";
import type { Executor } from "../db/client";
import { environments, gitPreviews, services } from "../db/schema";
import { repositoryKey } from "../git/repository-url";

/** An APPLICATION service a delivery may concern, with its environment and its repository's key. */
export type Candidate = {
  service: typeof services.$inferSelect;
  environment: typeof environments.$inferSelect;
  repository: string | null;
  /** Its environment is a preview: driven by pull request events only, never by pushes. */
  inPreview: boolean;
};

/** Every APPLICATION service of the organization, keyed for matching by repository. */
export async function loadCandidates(db: Executor, organizationId: string): Promise<Candidate[]> {
  const rows = await db
    .select({ service: services, environment: environments })
    .from(services)
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .where(and(eq(services.organizationId, organizationId), eq(services.kind, "APPLICATION")));
  const previews = new Set((await db.select({ id: gitPreviews.environmentId }).from(gitPreviews).where(eq(gitPreviews.organizationId, organizationId))).map((r) => r.id));
  return rows.map(({ service, environment }) => ({
    service,
    environment,
    repository: repositoryKey(service.config.git.url),
    inPreview: previews.has(environment.id),
  }));
}
