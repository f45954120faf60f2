import { eq } from "drizzle-orm";
import { parseGitUrl } from "../../engine/protocol";
import type { Executor } from "../db/client";
import { clusters } from "../db/schema";
import { AppError } from "../errors";

/**
 * Local repositories (`file://` URLs and absolute paths) are files on the engine's host: a
 * service may be built from one only on a cluster whose ADMIN allowed them (issue 13). Checked
 * when a service is saved, copied to another cluster and deployed; the engine checks its own
 * setting again before it clones.
 */
export async function assertRepositoryAllowed(db: Executor, clusterId: string, url: string): Promise<void> {
  if (!isLocalRepository(url)) return;
  const [cluster] = await db.select({ name: clusters.name, allowed: clusters.allowLocalRepositories }).from(clusters).where(eq(clusters.id, clusterId));
  if (cluster && !cluster.allowed) throw localRepositoryRefused(cluster.name, url);
}

export function isLocalRepository(url: string): boolean {
  const parsed = parseGitUrl(url);
  return parsed.ok && parsed.value.local;
}

export function localRepositoryRefused(clusterName: string, url: string): AppError {
  return new AppError(
    "INVALID",
    `${url} is a repository on the engine's host, and cluster "${clusterName}" does not allow local repositories: use an https, ssh or git URL, or ask an ADMIN to allow them (slipway cluster update ${clusterName} --local-repositories on)`,
  );
}
