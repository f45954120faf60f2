import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { Auth, type AuthConfig } from "@auth/core";
import { getToken, type JWT } from "@auth/core/jwt";
import Credentials from "@auth/core/providers/credentials";
import { incomingMessageToRequest } from "@trpc/server/adapters/node-http";
import { and, asc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import type { Services } from "../context";
import type { Logger } from "../logger";
import { endedSessions, memberships, users } from "../db/schema";
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

/** How long a session lasts since its cookie was last issued: 7 days from its last use (see renewSessionCookie). */
const SESSION_MAX_AGE_SECONDS = 7 * 24 * 3600;
/** How old a session's cookie gets before a request re-issues it (Auth.js's default `updateAge`): at most one renewal a day per session. */
const SESSION_UPDATE_AGE_SECONDS = 24 * 3600;

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
    session: { strategy: "jwt", maxAge: SESSION_MAX_AGE_SECONDS, updateAge: SESSION_UPDATE_AGE_SECONDS },
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
          // The session is stamped with the password and session generation it signed in with (session-stamp.ts).
          const signedIn = { id: user.id, email: user.email, name: user.name, stamp: sessionStamp(user.passwordHash, user.sessionGeneration) };
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
          token.stamp = sessionStamp(null, await sessionGenerationOf(services, accountId));
          token.sid = randomUUID();
        } else if (user?.id) {
          token.sub = user.id;
          token.stamp = "stamp" in user ? user.stamp : null;
          token.sid = randomUUID();
        } else if (!(await accountOfSession(services, token))) {
          // A session read (`/api/auth/session`): one that signed out, or whose account's password
          // changed or signed out everywhere since, is over, its cookie cleared.
          return null;
        } else if (typeof token.sid !== "string") {
          // Signed in before sessions had an id: it keeps the one it was known by (sessionIdOf).
          token.sid = sessionIdOf(token) ?? randomUUID();
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
       * The cookie is only cleared in the browser that signed out: a copy of it (another tab's
       * request in flight, a stolen cookie) would still be a session. So the session is recorded
       * as ended, which every read of a session checks (accountOfSession), and its live
       * connections end with it on every web process (other tabs kept streaming logs and running
       * shells). A failure here is logged by Auth.js (SignOutError) and the cookie is still cleared.
       */
      async signOut(message) {
        const token = "token" in message ? message.token : null;
        const sessionId = token && sessionIdOf(token);
        if (!token?.sub || !sessionId) return;
        const expiresAt = new Date(typeof token.exp === "number" ? token.exp * 1000 : Date.now() + SESSION_MAX_AGE_SECONDS * 1000);
        await services.db.transaction(async (tx) => {
          await tx.insert(endedSessions).values({ sessionId, userId: token.sub!, expiresAt }).onConflictDoNothing();
          await notifySignedOut(tx, sessionId);
        });
      },
    },
  };
}

/**
 * What a session is known by: its `sid`, drawn at sign-in and kept when Auth.js re-issues the
 * cookie (which draws a new `jti` each time). A cookie issued before sessions had one is known by
 * its `jti`, which stays its own until it is re-issued, and then becomes its `sid` (the jwt callback).
 */
function sessionIdOf(token: { sid?: unknown; jti?: unknown }): string | undefined {
  if (typeof token.sid === "string") return token.sid;
  return typeof token.jti === "string" ? token.jti : undefined;
}

async function sessionGenerationOf(services: Services, userId: string): Promise<number> {
  const [user] = await services.db.select({ generation: users.sessionGeneration }).from(users).where(eq(users.id, userId));
  if (!user) throw new Error(`the account ${userId} a sign-in opened is gone`);
  return user.generation;
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

/** Each request's session cookie, decrypted once: the renewal and sessionOf both read it (a decryption costs about a millisecond). */
const decrypted = new WeakMap<IncomingMessage, Promise<JWT | null>>();

function sessionToken(config: AuthConfig, req: IncomingMessage): Promise<JWT | null> {
  let token = decrypted.get(req);
  if (!token) {
    token = getToken({ req: { headers: { cookie: req.headers.cookie ?? "" } }, secret: config.secret!, secureCookie: config.useSecureCookies });
    decrypted.set(req, token);
  }
  return token;
}

/**
 * Renews a browser's session cookie once it is older than `updateAge`, so that a session lasts 7
 * days from its last use, not from its sign-in. Auth.js re-issues the cookie only when the session
 * is read through `/api/auth/session` (next-auth's SessionProvider does that from the browser; the
 * dashboard does not use it), so the API does it for every request that carries a session, as
 * next-auth's middleware does: the dashboard calls the API on every page and whenever its window
 * regains focus. Read through Auth.js itself, so that an ended session is never renewed (the jwt
 * callback refuses it) and the cookie keeps Auth.js's name, attributes and chunking; a refusal
 * clears nothing here (the request is refused by sessionOf anyway, and a database failure must not
 * sign the browser out). A cookie that is not due costs one decryption, no query.
 */
export async function renewSessionCookie(config: AuthConfig, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!req.headers.cookie) return;
  const token = await sessionToken(config, req);
  if (!token || typeof token.exp !== "number") return;
  const maxAge = config.session?.maxAge ?? SESSION_MAX_AGE_SECONDS;
  const updateAge = config.session?.updateAge ?? SESSION_UPDATE_AGE_SECONDS;
  const issuedAt = token.exp - maxAge;
  if (Date.now() < (issuedAt + updateAge) * 1000) return;
  // Only the cookie matters to a session read: its answer names no address (no redirect, no cookie domain).
  const read = new Request(`http://localhost${AUTH_BASE_PATH}/session`, { headers: { cookie: req.headers.cookie } });
  const cookies = (await Auth(read, config)).headers.getSetCookie();
  if (cookies.some((set) => SESSION_SET.test(set))) res.appendHeader("set-cookie", cookies);
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
  const token = await sessionToken(config, req);
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
    sessionId: sessionIdOf(token),
    expiresAt: token.exp * 1000,
  };
}

/**
 * The account a session belongs to, with its memberships (oldest first), while the session is
 * valid: null once the account is gone, the session signed out (ended_sessions), or the account's
 * password changed or it signed out everywhere since the session signed in (session-stamp.ts).
 * Every read of a session comes here (sessionOf, and Auth.js's own through the jwt callback), in
 * one query: the sign-out check is a subquery beside the account's row.
 */
async function accountOfSession(services: Services, token: { sub?: string; stamp?: unknown; sid?: unknown; jti?: unknown }) {
  if (!token.sub) return null;
  const sessionId = sessionIdOf(token) ?? null;
  const signedOut = sessionId ? sql<boolean>`exists (select 1 from ${endedSessions} where ${endedSessions.sessionId} = ${sessionId})` : sql<boolean>`false`;
  const rows = await services.db
    .select({
      passwordHash: users.passwordHash,
      sessionGeneration: users.sessionGeneration,
      signedOut,
      email: users.email,
      organizationId: memberships.organizationId,
      role: memberships.role,
    })
    .from(users)
    .leftJoin(memberships, eq(memberships.userId, users.id))
    .where(eq(users.id, token.sub))
    .orderBy(asc(memberships.createdAt));
  const account = rows[0];
  if (!account || account.signedOut || !stampMatches(token.stamp, account.passwordHash, account.sessionGeneration)) return null;
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
