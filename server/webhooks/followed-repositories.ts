import { and, eq, inArray } from "drizzle-orm";
import type { Services } from "../context";
import { services } from "../db/schema";
import { repositoryKey } from "../git/repository-url";
import { gitSourceOf } from "../services/configs";

/**
 * Channel on which a trigger on `services` (drizzle/0009) names the organization whose services
 * changed, so that every web process forgets its followed repositories at once.
 */
export const SERVICES_CHANNEL = "slipway_services_changed";

/** The reason stored with a delivery no service can concern (the worker writes the same). */
export const UNFOLLOWED_REASON = "no service follows this repository";

/**
 * The repositories an organization's services are built from, per organization, for the
 * intake: a push to a repository none of them follows is stored as processed at once, with its
 * reason, instead of waking the worker to read it back. A change to any service forgets the
 * organization's set (SERVICES_CHANNEL); `cacheMs` bounds the damage of a lost notification.
 */
export function createFollowedRepositories(svc: Pick<Services, "db">, options: { cacheMs?: number } = {}) {
  const cacheMs = options.cacheMs ?? 5_000;
  const cache = new Map<string, { expires: number; keys: Promise<ReadonlySet<string>> }>();

  async function load(organizationId: string): Promise<ReadonlySet<string>> {
    const rows = await svc.db
      .select({ kind: services.kind, config: services.config })
      .from(services)
      .where(and(eq(services.organizationId, organizationId), inArray(services.kind, ["APPLICATION", "JOB"])));
    return new Set(rows.flatMap((row) => repositoryKey(gitSourceOf(row)?.url ?? "") ?? []));
  }

  return {
    /** Whether a service of the organization is built from the repository (by its key, as repositoryKey gives it). */
    async follows(organizationId: string, repository: string): Promise<boolean> {
      const now = Date.now();
      let entry = cache.get(organizationId);
      if (!entry || entry.expires <= now) {
        entry = { expires: now + cacheMs, keys: load(organizationId) };
        cache.set(organizationId, entry);
        entry.keys.catch(() => cache.delete(organizationId));
        if (cache.size > 10_000) for (const [key, old] of cache) if (old.expires <= now) cache.delete(key);
      }
      return (await entry.keys).has(repository);
    },
    forget(organizationId: string) {
      cache.delete(organizationId);
    },
  };
}
