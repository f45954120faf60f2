import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { AppError } from "../errors";

/**
 * Password hashing with scrypt (node:crypto, no native addon). Stored format:
 * `scrypt$<N>$<r>$<p>$<salt>$<hash>` (salt and hash in base64url), so the cost parameters can
 * be raised later and old hashes still verify. N = 2^15, r = 8 is the OWASP minimum for scrypt
 * (https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#scrypt):
 * about 32 MiB and ~100 ms per hash.
 */
const defaultCost = { N: 2 ** 15, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
// A stored hash is trusted input, but bound the cost anyway so a corrupted row cannot make one
// login allocate gigabytes.
const MAX_N = 2 ** 20;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, defaultCost);
  const { N, r, p } = defaultCost;
  return ["scrypt", N, r, p, salt.toString("base64url"), hash.toString("base64url")].join("$");
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split("$");
  const cost = { N: Number(n), r: Number(r), p: Number(p) };
  const valid =
    scheme === "scrypt" &&
    salt !== undefined &&
    hash !== undefined &&
    Number.isInteger(cost.N) &&
    cost.N > 1 &&
    cost.N <= MAX_N &&
    (cost.N & (cost.N - 1)) === 0 &&
    Number.isInteger(cost.r) &&
    cost.r >= 1 &&
    cost.r <= 32 &&
    Number.isInteger(cost.p) &&
    cost.p >= 1 &&
    cost.p <= 16;
  const expected = Buffer.from(hash ?? "", "base64url");
  // An empty or truncated hash would compare equal to a derived key of the same tiny length.
  if (!valid || expected.length < 16) throw new AppError("INVALID", "Stored password hash has an unknown format");
  const actual = await derive(password, Buffer.from(salt, "base64url"), cost, expected.length);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A password for a generated account, shown once: 144 random bits, URL-safe characters. */
export function generatePassword(): string {
  return randomBytes(18).toString("base64url");
}

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }, length = KEY_BYTES): Promise<Buffer> {
  // scrypt needs 128 * N * r bytes; Node's default ceiling (32 MiB) is exactly the default cost,
  // so leave headroom.
  const options: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFKC"), salt, length, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}
