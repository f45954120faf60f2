import { generateKey, open, seal } from "./envelope";

/**
 * Wraps and unwraps organizations' data keys. The default keeps the master key in memory (read
 * from SLIPWAY_MASTER_KEY or the key file that `npm start` generates once); a KMS would
 * implement the same interface.
 */
export interface Keyring {
  wrapDataKey(organizationId: string, dataKey: Buffer): Promise<string>;
  unwrapDataKey(organizationId: string, wrapped: string): Promise<Buffer>;
}

export function createMasterKeyring(masterKey: Buffer): Keyring {
  return {
    wrapDataKey: async (organizationId, dataKey) => seal(masterKey, dataKey, `org:${organizationId}`),
    unwrapDataKey: async (organizationId, wrapped) => open(masterKey, wrapped, `org:${organizationId}`),
  };
}

/** Encrypts and decrypts variable values of one organization with its data key. */
export type OrganizationCipher = {
  encrypt(plaintext: string, context: string): string;
  decrypt(sealed: string, context: string): string;
};

export function organizationCipher(dataKey: Buffer): OrganizationCipher {
  return {
    encrypt: (plaintext, context) => seal(dataKey, plaintext, context),
    decrypt: (sealed, context) => open(dataKey, sealed, context).toString("utf8"),
  };
}

export function newDataKey(): Buffer {
  return generateKey();
}
