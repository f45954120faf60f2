import { createHash } from "node:crypto";

/**
 * What ties a browser session to the account's password at the time it signed in: the session's
 * cookie carries it, and a session whose account's password changed since (removed by a GitHub
 * sign-in of the address's verified owner, github-sign-in.ts) is over, on every device. Sessions
 * are JWT cookies, so there is no session row to delete; this is Django's approach
 * (https://docs.djangoproject.com/en/stable/topics/auth/default/#session-invalidation-on-password-change).
 * The cookie is encrypted (Auth.js's JWE), and the password hash is salted: neither is exposed.
 */
export function sessionStamp(passwordHash: string | null): string {
  return createHash("sha256")
    .update(`slipway-session:${passwordHash ?? ""}`)
    .digest("base64url");
}

/** Whether a session's stamp still matches its account; a session signed in before stamps existed has none and is over. */
export function stampMatches(stamp: unknown, passwordHash: string | null): boolean {
  return typeof stamp === "string" && stamp === sessionStamp(passwordHash);
}
