import { asc, eq, and, sql } from "drizzle-orm";
import { recordAudit } from "./audit/record-audit";
import type { Actor } from "./auth/actor";
import { generatePassword, hashPassword } from "./auth/passwords";
import { hashToken, issueToken } from "./auth/tokens";
import type { Database, Executor } from "./db/client";
import { apiTokens, clusters, memberships, organizations, users } from "./db/schema";
import { readFileIfExists, writeSecretFile } from "./home";
import { createOrganization } from "./organizations/create-organization";
import type { Keyring } from "./secrets/keyring";

export const LOCAL_CLUSTER_NAME = "local";
export const DEFAULT_ADMIN_EMAIL = "admin@slipway.local";

export type BootstrapOptions = {
  /** Where the local engine's token lives between starts (`<home>/engine/token`). */
  engineTokenFile: string;
  /** Services on the local cluster are reachable at `<service>-<env>-<project>.<domainSuffix>`. */
  domainSuffix: string;
  organizationName?: string;
  adminEmail?: string;
};

/** What only the first boot creates; the plaintext values exist nowhere else, show them once. */
export type FirstBootCredentials = {
  adminEmail: string;
  adminPassword: string;
  apiToken: string;
};

export type BootstrapResult = {
  organizationId: string;
  localClusterId: string;
  /** The local engine's token, as stored in `engineTokenFile`. */
  engineToken: string;
  /** Why the engine token was issued on this boot, if it was. */
  engineTokenIssued: null | "first-boot" | "token-file-missing" | "token-file-stale" | "cluster-created";
  /** Set on the first boot only. */
  firstBoot: FirstBootCredentials | null;
};

// Serialises concurrent boots on one database (two `npm start` against one DATABASE_URL, or a
// web and a start racing): the second waits and then finds the installation already there.
const BOOTSTRAP_LOCK = sql`select pg_advisory_xact_lock(hashtext('slipway:bootstrap'))`;

/**
 * Brings a fresh installation to a usable state, and is a no-op (apart from the engine token
 * file) on every later boot. A fresh installation gets an organization, an admin user who owns
 * it, an OWNER API token for the CLI, and the `local` cluster that `npm start`'s engine serves.
 *
 * Only hashes of the password and tokens are stored. The local engine still needs its token on
 * every start, so the token is kept in a 0600 file under the home; when that file is missing or
 * no longer matches the cluster (a restored database, a new home), a new token is issued.
 */
export async function bootstrapInstallation(db: Database, keyring: Keyring, options: BootstrapOptions): Promise<BootstrapResult> {
  // The token file is written inside the transaction, after the row that matches it: if the
  // commit then fails, the next boot sees a file that does not match and issues a new token.
  return db.transaction(async (tx) => {
    await tx.execute(BOOTSTRAP_LOCK);
    const [existing] = await tx.select({ id: organizations.id }).from(organizations).orderBy(asc(organizations.createdAt)).limit(1);
    if (!existing) return createInstallation(tx, keyring, options);

    const cluster = await findLocalCluster(tx, existing.id);
    if (!cluster) {
      const engine = issueToken("engine");
      const created = await insertLocalCluster(tx, existing.id, options.domainSuffix, engine.hash);
      await writeSecretFile(options.engineTokenFile, `${engine.token}\n`);
      return result(existing.id, created.id, engine.token, "cluster-created", null);
    }

    const stored = await readFileIfExists(options.engineTokenFile);
    if (stored && cluster.engineTokenHash === hashToken(stored)) {
      return result(cluster.organizationId, cluster.id, stored, null, null);
    }
    const engine = issueToken("engine");
    await tx.update(clusters).set({ engineTokenHash: engine.hash }).where(eq(clusters.id, cluster.id));
    await writeSecretFile(options.engineTokenFile, `${engine.token}\n`);
    return result(cluster.organizationId, cluster.id, engine.token, stored ? "token-file-stale" : "token-file-missing", null);
  });
}

async function createInstallation(tx: Executor, keyring: Keyring, options: BootstrapOptions): Promise<BootstrapResult> {
  const organization = await createOrganization(tx, keyring, { name: options.organizationName ?? "default" });
  const adminEmail = options.adminEmail ?? DEFAULT_ADMIN_EMAIL;
  const adminPassword = generatePassword();
  const [admin] = await tx
    .insert(users)
    .values({ email: adminEmail, name: "Admin", passwordHash: await hashPassword(adminPassword), instanceAdmin: true })
    .returning({ id: users.id });
  await tx.insert(memberships).values({ organizationId: organization.id, userId: admin!.id, role: "OWNER" });

  const api = issueToken("api");
  await tx.insert(apiTokens).values({
    organizationId: organization.id,
    createdById: admin!.id,
    name: "slipway CLI (created by npm start)",
    role: "OWNER",
    tokenHash: api.hash,
    prefix: api.prefix,
  });

  const engine = issueToken("engine");
  const cluster = await insertLocalCluster(tx, organization.id, options.domainSuffix, engine.hash);
  await writeSecretFile(options.engineTokenFile, `${engine.token}\n`);
  return result(organization.id, cluster.id, engine.token, "first-boot", { adminEmail, adminPassword, apiToken: api.token });
}

/** The oldest `local` cluster: the one the first boot created for the embedded engine. */
async function findLocalCluster(tx: Executor, organizationId: string) {
  const [cluster] = await tx
    .select({ id: clusters.id, organizationId: clusters.organizationId, engineTokenHash: clusters.engineTokenHash })
    .from(clusters)
    .where(and(eq(clusters.kind, "local"), eq(clusters.name, LOCAL_CLUSTER_NAME)))
    .orderBy(sql`${clusters.organizationId} = ${organizationId} desc`, asc(clusters.createdAt))
    .limit(1);
  return cluster ?? null;
}

/**
 * The cluster of `npm start`'s embedded engine. It allows local repositories (`file://` URLs
 * and paths on this host): the quick start is one person's machine, deploying what is on it.
 * The embedded engine allows them too (server/start.ts); an ADMIN can turn it off. Recorded in
 * the audit log as Slipway's own doing.
 */
async function insertLocalCluster(tx: Executor, organizationId: string, domainSuffix: string, engineTokenHash: string) {
  const values = { name: LOCAL_CLUSTER_NAME, kind: "local" as const, domainSuffix, allowLocalRepositories: true };
  const [cluster] = await tx
    .insert(clusters)
    .values({ organizationId, ...values, engineTokenHash })
    .returning({ id: clusters.id });
  await recordAudit(tx, bootstrapActor(organizationId), { action: "cluster.create", targetType: "cluster", targetId: cluster!.id, changes: values });
  return cluster!;
}

function bootstrapActor(organizationId: string): Actor {
  return { type: "system", id: null, label: "bootstrap (npm start)", organizationId, role: "OWNER", origin: "SYSTEM" };
}

function result(
  organizationId: string,
  localClusterId: string,
  engineToken: string,
  engineTokenIssued: BootstrapResult["engineTokenIssued"],
  firstBoot: FirstBootCredentials | null,
): BootstrapResult {
  return { organizationId, localClusterId, engineToken, engineTokenIssued, firstBoot };
}
