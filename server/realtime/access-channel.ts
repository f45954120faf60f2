/**
 * The Postgres channel notified with an organization's id whenever access in it shrinks: a role
 * changed, a member left, a token was revoked (a trigger: drizzle/0013_access_changes_and_rate_limits.sql),
 * a GitHub sign-in took an account over (server/auth/github-sign-in.ts). Every web process then
 * re-checks its `/ui` sockets of the organization at once (server/realtime/ui-gateway.ts).
 */
export const ACCESS_CHANNEL = "slipway_access_changed";
