import { eq, sql } from "drizzle-orm";
import type { Executor } from "../db/client";
import { preparedOnce } from "../db/prepared";
import { organizations } from "../db/schema";
import { notFound } from "../errors";
import { organizationCipher, type Keyring, type OrganizationCipher } from "./keyring";

/** The cipher of an organization: its data key, unwrapped by the keyring (fails closed). */
export async function cipherFor(db: Executor, keyring: Keyring, organizationId: string): Promise<OrganizationCipher> {
  const [organization] = await cipherStatements(db).wrappedKey.execute({ organizationId });
  if (!organization) throw notFound("Organization");
  return unwrapCipher(keyring, organizationId, organization.wrappedDataKey);
}

/** Every deployment request reads it (see preparedOnce). */
const cipherStatements = preparedOnce((db) => ({
  wrappedKey: db
    .select({ wrappedDataKey: organizations.wrappedDataKey })
    .from(organizations)
    .where(eq(organizations.id, sql.placeholder("organizationId")))
    .prepare("organization_wrapped_key"),
}));

/** The cipher of an organization whose wrapped data key the caller has read already (in a query of its own). */
export async function unwrapCipher(keyring: Keyring, organizationId: string, wrappedDataKey: string): Promise<OrganizationCipher> {
  return organizationCipher(await keyring.unwrapDataKey(organizationId, wrappedDataKey));
}
