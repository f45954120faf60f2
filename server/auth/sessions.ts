import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { Auth, type AuthConfig } from "@auth/core";
import { getToken } from "@auth/core/jwt";
import Credentials from "@auth/core/providers/credentials";
import { incomingMessageToRequest } from "@trpc/server/adapters/node-http";
import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import type { Services } from "../context";
import type { Logger } from "../logger";
import { memberships, users } from "../db/schema";
import { AppError } from "../errors";
import { notifySignedOut } from "../realtime/access-channel";
import type { Actor } from "./actor";
import { type GitHubApp, gitHubProvider } from "./github";
import { accountForGitHub } from "./github-sign-in";
import { verifyPassword } from "./passwords";
import type { AuthLimits, Refusal } from "./rate-limits";
import { sessionStamp, stampMatches } from "./session-stamp";
import { GITHUB_EMAIL_UNVERIFIED, SIGNUP_CLOSED } from "./sign-in-refusals";

/**
 * Browser sessions, with Auth.js (the library under next-auth v5): email and password sign-in,
 * sessions as encrypted JWT cookies. The web server answers `/api/auth/*` itself, next to the
 * API, so sign-in and the API share one process and one database pool.
 */
export const AUTH_BASE_PATH = "/api/auth";
/** The `error` of a sign-in refused for too many failures; its `code` is the seconds to wait (components/signin/sign-in-form.tsx). */
export const SIGN_IN_THROTTLED = "TooManyAttempts";
/** Chooses among the user's organizations (the dashboard's switcher sets it); the first one otherwise. */
export const ORGANIZATION_COOKIE = "slipway-organization";
/** Slipway's sign-in page (app/signin): where Auth.js sends a refused or failed sign-in, with an `error` code it explains. */
const SIGN_IN_PAGE = "/signin";

const credentials = z.object({ email: z.string().email(), password: z.string().min(1).max(1000) });

export type AuthOptions = { secret: string; publicUrl: string; github?: GitHubApp; logger?: Logger };

export function authConfig(services: Services, options: AuthOptions): AuthConfig {
  const { secret, publicUrl, logger } = options;
  return {
    secret,
    // Auth.js prints to the console by default; a refused password is routine, not an error.
    logger: {
      error: (error) => (error.name === "CredentialsSignin" ? logger?.info("sign-in refused") : logger?.error({ err: error }, "auth error")),
      warn: (code) => logger?.warn({ code }, "auth warning"),
      debug: () => {},
    },
    basePath: AUTH_BASE_PATH,
    trustHost: true,
    useSecureCookies: publicUrl.startsWith("https://"),
    session: { strategy: "jwt", maxAge: 7 * 24 * 3600 },
    // Not Auth.js's own pages: a sign-in that fails for any reason ends on Slipway's, which says why (sign-in-refusals.ts).
    pages: { signIn: SIGN_IN_PAGE, error: SIGN_IN_PAGE },
    providers: [
      Credentials({
        credentials: { email: { label: "Email", type: "email" }, password: { label: "Password", type: "password" } },
        async authorize(input) {
          const parsed = credentials.safeParse(input);
          if (!parsed.success) return null;
          const [user] = await services.db.select().from(users).where(eq(users.email, parsed.data.email.toLowerCase()));
          if (!user?.passwordHash) return null;
          // A stored hash that cannot be read refuses the sign-in (fail closed) and is logged.
          const valid = await verifyPassword(parsed.data.password, user.passwordHash).catch((error: unknown) => {
            logger?.error({ err: error, userId: user.id }, "stored password hash is unreadable");
            return false;
          });
          if (!valid) return null;
          // The session is stamped with the password it signed in with (session-stamp.ts).
          const signedIn = { id: user.id, email: user.email, name: user.name, stamp: sessionStamp(user.passwordHash) };
          return signedIn;
        },
      }),
      ...(options.github ? [gitHubProvider(options.github)] : []),
    ],
    callbacks: {
      /**
       * A GitHub sign-in finds (or creates) its Slipway account here, not in `jwt`: a refusal
       * here can still send the browser to the sign-in page with its reason, where one thrown
       * in `jwt` only ends on a generic error. `jwt` then reads the account off the same profile.
       */
      async signIn({ account, profile }) {
        if (account?.provider !== "github" || !profile) return true;
        const refused = await openGitHubAccount(services, profile);
        if (refused) logger?.info({ reason: refused }, "GitHub sign-in refused");
        return refused ? `${SIGN_IN_PAGE}?${new URLSearchParams({ error: refused })}` : true;
      },
      async jwt({ token, user, account, profile }) {
        if (account?.provider === "github") {
          const accountId = profile && gitHubAccounts.get(profile);
          if (!accountId) throw new Error("a GitHub sign-in reached the session without the account its signIn callback opened");
          token.sub = accountId;
          // The account has no password once a GitHub sign-in opened it (github-sign-in.ts).
          token.stamp = sessionStamp(null);
          token.sid = randomUUID();
        } else if (user?.id) {
          token.sub = user.id;
          token.stamp = "stamp" in user ? user.stamp : null;
          token.sid = randomUUID();
        } else if (!(await accountOfSession(services, token))) {
          // A session read (`/api/auth/session`): one whose account's password changed since is over, its cookie cleared.
          return null;
        } else if (typeof token.sid !== "string") {
          // Signed in before sessions had an id: it has one from its next cookie on.
          token.sid = randomUUID();
        }
        return token;
      },
      session({ session, token }) {
        if (token.sub) session.user.id = token.sub;
        return session;
      },
    },
    events: {
      /**
       * The session's live connections end with it on every web process (other tabs of the
       * browser kept streaming logs and running shells): the cookie is only cleared in the
       * browser that signed out, and there is no session row to delete. The session's own id
       * (`sid`), not the JWT's `jti`: Auth.js draws a new `jti` each time it re-issues the cookie.
       * A failure here is logged by Auth.js (SignOutError) and the cookie is still cleared.
       */
      async signOut(message) {
        const sid = "token" in message ? message.token?.sid : undefined;
        if (typeof sid === "string") await notifySignedOut(services.db, sid);
      },
    },
  };
}

/** The Slipway account each GitHub sign-in in progress opened, by its GitHub profile (Auth.js hands the same object to `signIn` and `jwt`). */
const gitHubAccounts = new WeakMap<object, string>();

/**
 * Opens the account of a GitHub sign-in (github-sign-in.ts), or says why it is refused: the
 * GitHub account has no verified primary address (github.ts gives it only verified: the account
 * is tied by it), or no account has the address and sign-up is closed.
 */
async function openGitHubAccount(services: Services, profile: Record<string, unknown>): Promise<string | null> {
  const email = typeof profile.email === "string" ? profile.email : null;
  if (!email) return GITHUB_EMAIL_UNVERIFIED;
  try {
    gitHubAccounts.set(profile, await accountForGitHub(services, email, (typeof profile.name === "string" && profile.name) || email));
    return null;
  } catch (error) {
    // assertSignupOpen's refusal (server/instance/settings.ts); any other failure stays an error.
    if (error instanceof AppError && error.code === "FORBIDDEN") return SIGNUP_CLOSED;
    throw error;
  }
}

/** Where passwords are checked, and so where guessing them is rate limited. */
const CREDENTIALS_CALLBACK = `${AUTH_BASE_PATH}/callback/credentials`;
/** A session cookie being set (not cleared): Auth.js's name, with the `__Secure-` prefix behind HTTPS, maybe chunked. */
const SESSION_SET = /^(__Secure-)?authjs\.session-token(\.\d+)?=[^;]/;

/**
 * Serves Auth.js's endpoints (sign-in, callback, session, csrf, sign-out) from a Node request.
 * With `guard`, email and password sign-ins are rate limited per account and address
 * (rate-limits.ts): slowed after a few failures, then refused with 429 and `Retry-After`.
 */
export async function handleAuthRequest(
  config: AuthConfig,
  req: IncomingMessage,
  res: ServerResponse,
  guard?: { limits: AuthLimits; address: string },
): Promise<void> {
  const request = incomingMessageToRequest(req, res, { maxBodySize: 64 * 1024 });
  const limited = guard && request.method === "POST" && new URL(request.url).pathname === CREDENTIALS_CALLBACK ? guard : null;
  const email = limited ? await submittedEmail(request) : "";
  if (limited) {
    const attempt = await limited.limits.signInAttempt(email, limited.address);
    if (attempt.refused) return refuseSignIn(request, res, attempt.refused);
    if (attempt.delayMs > 0) await sleep(attempt.delayMs);
  }
  const response = await Auth(request, config);
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name === "set-cookie") return;
    headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  if (limited && cookies.some((set) => SESSION_SET.test(set))) await limited.limits.signInSucceeded(email, limited.address);
  res.writeHead(response.status, headers);
  res.end(Buffer.from(await response.arrayBuffer()));
}

async function submittedEmail(request: Request): Promise<string> {
  const form = await request
    .clone()
    .formData()
    .catch(() => null);
  const email = form?.get("email");
  return typeof email === "string" ? email : "";
}

/**
 * 429 with `Retry-After`. The body is what Auth.js answers the dashboard's `signIn()` (a URL
 * whose `error` it reports), so the sign-in form can say why and for how long.
 */
function refuseSignIn(request: Request, res: ServerResponse, refusal: Refusal): void {
  const url = new URL("/signin", request.url);
  url.searchParams.set("error", SIGN_IN_THROTTLED);
  url.searchParams.set("code", String(refusal.retryAfterSeconds));
  res.writeHead(429, { "content-type": "application/json", "retry-after": String(refusal.retryAfterSeconds) });
  res.end(JSON.stringify({ url: url.toString(), message: `Too many failed sign-ins: try again in ${refusal.retryAfterSeconds} seconds` }));
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return undefined;
}

/**
 * What a browser session is, for what holds on to it (the `/ui` gateway): its `stamp`
 * (session-stamp.ts) to re-check it, its `sessionId` that a sign-out names (absent in cookies
 * issued before sessions had one), and when this cookie expires (ms since the epoch).
 */
export type BrowserSession = { userId: string; actor: Actor | null; stamp: string; sessionId?: string; expiresAt: number };

/**
 * The signed-in user of a browser request and their actor in the organization they chose, or
 * null without a session. The actor is null for a user who belongs to no organization yet (a
 * newcomer who signed up): they may still create one (server/organizations/organizations.ts).
 */
export async function sessionOf(services: Services, config: AuthConfig, req: IncomingMessage): Promise<BrowserSession | null> {
  if (!req.headers.cookie) return null;
  const token = await getToken({ req: { headers: { cookie: req.headers.cookie } }, secret: config.secret!, secureCookie: config.useSecureCookies });
  // Auth.js sets `exp` and getToken still takes a cookie up to 15 s past it (its clock tolerance):
  // the `/ui` gateway ends a socket at its cookie's `exp`, so a reconnect with it is refused too.
  if (!token || typeof token.exp !== "number" || token.exp * 1000 <= Date.now()) return null;
  const account = await accountOfSession(services, token);
  // A valid session has a stamp (accountOfSession checked it against the account's).
  if (!account || typeof token.stamp !== "string") return null;
  const wanted = cookie(req, ORGANIZATION_COOKIE);
  const membership = account.memberships.find((row) => row.organizationId === wanted) ?? account.memberships[0];
  return {
    userId: account.id,
    actor: membership ? memberActor(account.id, membership, req.socket.remoteAddress) : null,
    stamp: token.stamp,
    sessionId: typeof token.sid === "string" ? token.sid : undefined,
    expiresAt: token.exp * 1000,
  };
}

/**
 * The account a session belongs to, with its memberships (oldest first), while the session is
 * valid: null once the account is gone or its password changed since the session signed in
 * (session-stamp.ts).
 */
async function accountOfSession(services: Services, token: { sub?: string; stamp?: unknown }) {
  if (!token.sub) return null;
  const rows = await services.db
    .select({ passwordHash: users.passwordHash, email: users.email, organizationId: memberships.organizationId, role: memberships.role })
    .from(users)
    .leftJoin(memberships, eq(memberships.userId, users.id))
    .where(eq(users.id, token.sub))
    .orderBy(asc(memberships.createdAt));
  if (rows.length === 0 || !stampMatches(token.stamp, rows[0]!.passwordHash)) return null;
  const joined = rows.flatMap(({ organizationId, role, email }) => (organizationId && role ? [{ organizationId, role, email }] : []));
  return { id: token.sub, memberships: joined };
}

function memberActor(userId: string, membership: { organizationId: string; role: Actor["role"]; email: string }, ip: string | undefined): Actor {
  return { type: "user", id: userId, label: membership.email, organizationId: membership.organizationId, role: membership.role, origin: "UI", ip, userId };
}

/**
 * A signed-in user's actor in an organization as of now, or null once they left it: long-lived
 * connections (the `/ui` socket) re-check with it, since the session cookie outlives a membership.
 */
export async function currentMemberActor(services: Services, member: { userId: string; organizationId: string }, ip?: string): Promise<Actor | null> {
  const [membership] = await services.db
    .select({ organizationId: memberships.organizationId, role: memberships.role, email: users.email })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.userId, member.userId), eq(memberships.organizationId, member.organizationId)));
  return membership ? memberActor(member.userId, membership, ip) : null;
}
