import { eq } from "drizzle-orm";
import type { Executor } from "../db/client";
import { organizations } from "../db/schema";
import { notFound } from "../errors";
import { organizationCipher, type Keyring, type OrganizationCipher } from "./keyring";

/** The cipher of an organization: its data key, unwrapped by the keyring (fails closed). */
export async function cipherFor(db: Executor, keyring: Keyring, organizationId: string): Promise<OrganizationCipher> {
  const [organization] = await db.select({ wrappedDataKey: organizations.wrappedDataKey }).from(organizations).where(eq(organizations.id, organizationId));
  if (!organization) throw notFound("Organization");
  return unwrapCipher(keyring, organizationId, organization.wrappedDataKey);
}

/** The cipher of an organization whose wrapped data key the caller has read already (in a query of its own). */
export async function unwrapCipher(keyring: Keyring, organizationId: string, wrappedDataKey: string): Promise<OrganizationCipher> {
  return organizationCipher(await keyring.unwrapDataKey(organizationId, wrappedDataKey));
}
