import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** `sha256=<hex>` of the HMAC-SHA256 of the body: how GitHub, Bitbucket and the generic hook sign. */
export function hmacSignature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** `sha256=<hex>` against the HMAC-SHA256 of the raw body, compared in constant time. */
export function hmacMatches(secret: string, body: Buffer, signature: string | undefined): boolean {
  if (!signature?.startsWith("sha256=")) return false;
  const given = signature.slice("sha256=".length);
  if (!/^[0-9a-fA-F]{64}$/.test(given)) return false;
  const expected = createHmac("sha256", secret).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(given, "hex"));
}

/** A shared token compared in constant time: digests first, so unequal lengths reveal nothing. */
export function tokenMatches(secret: string, token: string | undefined): boolean {
  if (token === undefined) return false;
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(secret), digest(token));
}
