import type { IncomingMessage } from "node:http";
import type { AuthConfig } from "@auth/core";
import type { Services } from "../context";
import { sessionOf } from "./sessions";

/** Pages and files anyone may load: sign-in, sign-up, invitations, Next's assets and the icon. */
const PUBLIC = /^\/(signin|signup|invite\/|_next\/|icon\.svg|favicon\.ico)/;

/**
 * Whether a browser's request for a dashboard page must go to the sign-in page first: a page
 * load (not Next's client-side data requests) with no valid session. Redirecting here, before
 * the page runs, spares the signed-out visitor a page whose first API call answers 401.
 */
export async function needsSignIn(services: Services, auth: AuthConfig, req: IncomingMessage): Promise<boolean> {
  if (req.method !== "GET" || PUBLIC.test(req.url ?? "/")) return false;
  if (!req.headers.accept?.includes("text/html") || req.headers["rsc"]) return false;
  // A session without an organization is signed in: the dashboard asks a newcomer to create one.
  return (await sessionOf(services, auth, req)) === null;
}
