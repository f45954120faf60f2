import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { AppError } from "../errors";

/**
 * Envelope encryption with AES-256-GCM: each organization has a random data key, stored wrapped
 * by the master key. Values are encrypted with the data key. Format of a sealed value:
 * `v1.<iv>.<tag>.<ciphertext>` in base64url. Decryption fails closed: a wrong key or a
 * tampered value throws, it never returns garbage or the ciphertext.
 */
const VERSION = "v1";
const KEY_BYTES = 32;
const IV_BYTES = 12;

/**
 * IVs come from random bytes drawn 3 KiB at a time, each slice used once: a clone re-encrypts
 * hundreds of values, and a call into the random generator per value was half of seal's time
 * (issue 17, item 7).
 */
const ivs = { bytes: Buffer.alloc(0), offset: 0 };
function nextIv(): Buffer {
  if (ivs.offset + IV_BYTES > ivs.bytes.length) {
    ivs.bytes = randomBytes(IV_BYTES * 256);
    ivs.offset = 0;
  }
  const iv = ivs.bytes.subarray(ivs.offset, ivs.offset + IV_BYTES);
  ivs.offset += IV_BYTES;
  return iv;
}

export function seal(key: Buffer, plaintext: string | Buffer, associatedData: string): string {
  const iv = nextIv();
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(associatedData));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [VERSION, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), ciphertext.toString("base64url")].join(".");
}

export function open(key: Buffer, sealed: string, associatedData: string): Buffer {
  const [version, iv, tag, ciphertext] = sealed.split(".");
  if (version !== VERSION || !iv || !tag || ciphertext === undefined) {
    throw new AppError("INVALID", "Encrypted value has an unknown format");
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(associatedData));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, "base64url")), decipher.final()]);
  } catch (error) {
    throw new AppError("UNAVAILABLE", "Encrypted value cannot be decrypted with the configured key", { cause: error });
  }
}

export function generateKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function parseKey(encoded: string): Buffer {
  const key = Buffer.from(encoded.trim(), "base64");
  if (key.length !== KEY_BYTES) throw new AppError("INVALID", `The master key must be ${KEY_BYTES} bytes, base64-encoded`);
  return key;
}
