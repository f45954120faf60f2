import { sql } from "drizzle-orm";
import type { Executor } from "../db/client";

/**
 * The Postgres channel every web process listens to, to end or re-check its `/ui` sockets at once
 * (server/realtime/ui-gateway.ts). Notified with:
 * - an organization's id whenever access in it shrinks: a role changed, a member left, a token was
 *   revoked (a trigger: drizzle/0013_access_changes_and_rate_limits.sql), a GitHub sign-in took an
 *   account over (server/auth/github-sign-in.ts): the organization's sockets are re-checked;
 * - `session:<id>` when a browser session signed out (server/auth/sessions.ts): the sockets of that
 *   very session end. Sessions are JWT cookies with no server-side row, so this is how the web
 *   processes that hold its sockets hear of it.
 */
export const ACCESS_CHANNEL = "slipway_access_changed";

const SIGNED_OUT_PREFIX = "session:";

export type AccessNotice = { kind: "organization"; organizationId: string } | { kind: "signed-out"; sessionId: string };

/** What a notification on ACCESS_CHANNEL says (an organization id for anything not `session:`, as the trigger sends). */
export function parseAccessNotice(payload: string): AccessNotice {
  return payload.startsWith(SIGNED_OUT_PREFIX)
    ? { kind: "signed-out", sessionId: payload.slice(SIGNED_OUT_PREFIX.length) }
    : { kind: "organization", organizationId: payload };
}

/** Tells every web process that the session `sessionId` signed out (at commit, within a transaction). */
export async function notifySignedOut(db: Executor, sessionId: string): Promise<void> {
  if (!sessionId) throw new Error("a sign-out notice needs the session's id");
  await db.execute(sql`select pg_notify(${ACCESS_CHANNEL}, ${SIGNED_OUT_PREFIX + sessionId})`);
}
