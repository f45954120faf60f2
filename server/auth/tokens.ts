import { createHash, randomBytes } from "node:crypto";

/**
 * Bearer tokens (API tokens and engine tokens). The token is shown once; only its SHA-256 is
 * stored, which is enough for tokens of 32 random bytes (no slow hash needed: nothing to guess).
 * The prefix makes a leaked token recognisable (`swp_` for API, `swe_` for engines, `swi_` for
 * invitations).
 */
export type TokenKind = "api" | "engine" | "invite";
const prefixes: Record<TokenKind, string> = { api: "swp_", engine: "swe_", invite: "swi_" };

export type IssuedToken = { token: string; hash: string; prefix: string };

export function issueToken(kind: TokenKind): IssuedToken {
  const token = prefixes[kind] + randomBytes(32).toString("base64url");
  return { token, hash: hashToken(token), prefix: token.slice(0, 10) };
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
