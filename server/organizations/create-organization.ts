import type { Executor } from "../db/client";
import { organizations } from "../db/schema";
import { newDataKey, type Keyring } from "../secrets/keyring";
import { randomUUID } from "node:crypto";

/** Creates an organization with its own data key, wrapped by the keyring's master key. */
export async function createOrganization(db: Executor, keyring: Keyring, input: { name: string }) {
  const id = randomUUID();
  const wrappedDataKey = await keyring.wrapDataKey(id, newDataKey());
  const [organization] = await db.insert(organizations).values({ id, name: input.name, wrappedDataKey }).returning();
  return organization!;
}
