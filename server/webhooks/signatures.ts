import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { GitProvider } from "../db/schema";

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `sha256=<hex>` against the HMAC-SHA256 of the raw body, compared in constant time. */
function hmacMatches(secret: string, body: Buffer, signature: string | undefined): boolean {
  if (!signature?.startsWith("sha256=")) return false;
  const given = signature.slice("sha256=".length);
  if (!/^[0-9a-fA-F]{64}$/.test(given)) return false;
  const expected = createHmac("sha256", secret).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(given, "hex"));
}

/** A shared token compared in constant time: digests first, so unequal lengths reveal nothing. */
function tokenMatches(secret: string, token: string | undefined): boolean {
  if (token === undefined) return false;
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(secret), digest(token));
}

/**
 * Checks a delivery the way its provider signs it:
 * - GitHub: `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`
 *   (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries);
 * - GitLab: `X-Gitlab-Token` is the secret itself (https://docs.gitlab.com/user/project/integrations/webhooks/#validate-requests-with-a-secret-token);
 * - Bitbucket: `X-Hub-Signature: sha256=<HMAC-SHA256 of the body>`
 *   (https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/#Secure-webhooks);
 * - generic: `X-Slipway-Signature: sha256=<HMAC-SHA256 of the body>`.
 */
export function verifySignature(provider: GitProvider, secret: string, body: Buffer, headers: Headers): boolean {
  switch (provider) {
    case "github":
      return hmacMatches(secret, body, header(headers, "x-hub-signature-256"));
    case "gitlab":
      return tokenMatches(secret, header(headers, "x-gitlab-token"));
    case "bitbucket":
      return hmacMatches(secret, body, header(headers, "x-hub-signature"));
    case "generic":
      return hmacMatches(secret, body, header(headers, "x-slipway-signature"));
  }
}

/** The header a sender puts the signature in, for the provider: what tests, the bench and the CLI need. */
export function signatureHeaders(provider: GitProvider, secret: string, body: string | Buffer): Record<string, string> {
  const hmac = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
  switch (provider) {
    case "github":
      return { "x-hub-signature-256": hmac };
    case "gitlab":
      return { "x-gitlab-token": secret };
    case "bitbucket":
      return { "x-hub-signature": hmac };
    case "generic":
      return { "x-slipway-signature": hmac };
  }
}
