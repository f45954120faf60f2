import type { ContainerConfig } from "../../engine/protocol/snapshot";
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
