import type { IncomingMessage } from "node:http";

/**
 * Whether a cookie-carrying request comes from the dashboard's own pages (issue 13). SameSite
 * cookies are no defence here: an app deployed under the dashboard's domain is same-site, so its
 * pages send the dashboard's session cookie along. Browsers always send `Origin` on WebSocket
 * handshakes and on cross-origin or non-GET fetches, so a cookie-authenticated socket or mutation
 * must carry an `Origin` (or, from older browsers, a `Referer`) that is the public URL's origin or
 * the origin the request was addressed to (its `Host`); anything else, or nothing, is refused.
 * Requests with an API token carry no ambient credential and need no such check.
 * https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html#verifying-origin-with-standard-headers
 */
export function fromOwnOrigin(req: IncomingMessage, publicUrl: string): boolean {
  const claimed = req.headers.origin ?? req.headers.referer;
  if (!claimed || claimed === "null") return false;
  let origin: URL;
  try {
    origin = new URL(claimed);
  } catch {
    return false;
  }
  if (origin.origin === new URL(publicUrl).origin) return true;
  return req.headers.host !== undefined && origin.host === req.headers.host.toLowerCase();
}

/** A request that carries a session cookie and no API token: the one kind a foreign page can make in the user's name. */
export function isCookieAuthenticated(req: IncomingMessage): boolean {
  return !req.headers.authorization?.startsWith("Bearer ") && Boolean(req.headers.cookie);
}
