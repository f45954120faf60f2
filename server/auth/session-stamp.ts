import { createHash } from "node:crypto";

/**
 * What ties a browser session to its account as it was when it signed in: the account's password
 * and its session generation. The session's cookie carries it, and a session is over on every
 * device once its account's password changed since (removed by a GitHub sign-in of the address's
 * verified owner, github-sign-in.ts) or the account signed out everywhere (sessions.ts raises the
 * generation). Sessions are JWT cookies, so there is no session row to delete; this is Django's
 * approach (https://docs.djangoproject.com/en/stable/topics/auth/default/#session-invalidation-on-password-change).
 * The cookie is encrypted (Auth.js's JWE), and the password hash is salted: neither is exposed.
 *
 * Generation 0 (an account that never signed out everywhere) stamps as before generations
 * existed, so that upgrading ends nobody's session.
 */
export function sessionStamp(passwordHash: string | null, generation = 0): string {
  if (!Number.isInteger(generation) || generation < 0) throw new Error(`a session generation is a whole number, not ${generation}`);
  const password = createHash("sha256")
    .update(`slipway-session:${passwordHash ?? ""}`)
    .digest("base64url");
  return generation === 0 ? password : `${password}.${generation}`;
}

/** Whether a session's stamp still matches its account; a session signed in before stamps existed has none and is over. */
export function stampMatches(stamp: unknown, passwordHash: string | null, generation = 0): boolean {
  return typeof stamp === "string" && stamp === sessionStamp(passwordHash, generation);
}

/**
 * Why a stamp no longer matches its account, or null while it does: what a live connection tells
 * its user (server/realtime/ui-gateway.ts). The password is compared first: a changed password is
 * the graver news.
 */
export function stampEndedBy(
  stamp: string,
  account: { passwordHash: string | null; sessionGeneration: number },
): "password-changed" | "github-takeover" | "signed-out-everywhere" | null {
  if (stampMatches(stamp, account.passwordHash, account.sessionGeneration)) return null;
  const [password] = stamp.split(".");
  if (password === sessionStamp(account.passwordHash)) return "signed-out-everywhere";
  return account.passwordHash === null && password !== sessionStamp(null) ? "github-takeover" : "password-changed";
}
