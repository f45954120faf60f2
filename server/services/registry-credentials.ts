import { type ContainerConfig, registryHostOf } from "../../engine/protocol/snapshot";
import type { OrganizationCipher } from "../secrets/keyring";

/**
 * A CONTAINER service's registry password is a secret: stored sealed with the organization's
 * key inside the service's config, never returned by the API, redacted in the audit log, and
 * opened only to render a deployment's snapshot (which seals it again for the engine).
 */
const CONTEXT = "registry-credentials";
export const HIDDEN_PASSWORD = "[secret]";

function withPassword(config: ContainerConfig, password: (current: string) => string): ContainerConfig {
  const credentials = config.image.credentials;
  return credentials ? { ...config, image: { ...config.image, credentials: { ...credentials, password: password(credentials.password) } } } : config;
}

export const sealRegistryPassword = (cipher: OrganizationCipher, config: ContainerConfig) => withPassword(config, (plain) => cipher.encrypt(plain, CONTEXT));
export const openRegistryPassword = (cipher: OrganizationCipher, config: ContainerConfig) => withPassword(config, (sealed) => cipher.decrypt(sealed, CONTEXT));
/** For answers and audit entries. */
export const hideRegistryPassword = (config: ContainerConfig) => withPassword(config, () => HIDDEN_PASSWORD);

type RegistryCredentials = NonNullable<ContainerConfig["image"]["credentials"]>;
type GivenImage = { name?: unknown; credentials?: Partial<RegistryCredentials> | null };

/**
 * The credentials an image update stores: none when it clears them (null), the given ones over
 * the stored ones, but the stored ones only while the image stays on their registry: an image
 * moved to another host does not take them along (whoever may edit a service may not read its
 * password, so may not send it elsewhere either), as a repository's credentials stay with their
 * host (git-credentials.ts). New credentials for the new host are given whole.
 */
export function registryCredentialsToStore(stored: ContainerConfig["image"], given: GivenImage): Partial<RegistryCredentials> | undefined {
  if (given.credentials === null) return undefined;
  const moved = typeof given.name === "string" && registryHostOf(given.name) !== registryHostOf(stored.name);
  const kept = moved ? undefined : stored.credentials;
  return given.credentials ? { ...kept, ...given.credentials } : kept;
}
