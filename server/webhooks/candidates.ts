import { and, eq } from "drizzle-orm";
import type { Executor } from "../db/client";
import { environments, gitPreviews, services } from "../db/schema";
import type { ApplicationConfig } from "../../engine/protocol/snapshot";
import { repositoryKey } from "../git/repository-url";
import { applicationConfigOf } from "../services/configs";

/** An APPLICATION service a delivery may concern, with its environment and its repository's key. */
export type Candidate = {
  service: typeof services.$inferSelect;
  /** The service's configuration (APPLICATION services only). */
  config: ApplicationConfig;
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
  return rows.flatMap(({ service, environment }) => {
    const config = applicationConfigOf(service);
    return config ? [{ service, config, environment, repository: repositoryKey(config.git.url), inPreview: previews.has(environment.id) }] : [];
  });
}
