import { decode, encode } from "@auth/core/jwt";

/** Auth.js's session cookie over plain HTTP (tests serve on 127.0.0.1). */
export const SESSION_COOKIE = "authjs.session-token";

/** A browser's cookies across responses (a cleared cookie is dropped). */
export function cookieJar() {
  const cookies = new Map<string, string>();
  return {
    keep(response: Response) {
      for (const cookie of response.headers.getSetCookie()) {
        const [pair] = cookie.split(";");
        const at = pair!.indexOf("=");
        if (pair!.slice(at + 1)) cookies.set(pair!.slice(0, at), pair!.slice(at + 1));
        else cookies.delete(pair!.slice(0, at));
      }
    },
    get: (name: string) => cookies.get(name),
    set: (name: string, value: string) => cookies.set(name, value),
    header: () => [...cookies].map(([name, value]) => `${name}=${value}`).join("; "),
  };
}
export type CookieJar = ReturnType<typeof cookieJar>;

async function csrfToken(url: string, jar: CookieJar): Promise<string> {
  const answer = await fetch(`${url}/api/auth/csrf`, { headers: { cookie: jar.header() } });
  jar.keep(answer);
  return ((await answer.json()) as { csrfToken: string }).csrfToken;
}

/** Signs in with email and password as the dashboard's form does: a browser of its own, its cookies in the jar returned. */
export async function passwordSignIn(url: string, email: string, password: string): Promise<CookieJar> {
  const jar = cookieJar();
  const token = await csrfToken(url, jar);
  const answer = await fetch(`${url}/api/auth/callback/credentials`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header() },
    body: new URLSearchParams({ csrfToken: token, email, password }),
  });
  jar.keep(answer);
  if (!jar.get(SESSION_COOKIE)) throw new Error(`the sign-in of ${email} set no session cookie (status ${answer.status})`);
  return jar;
}

/** Signs out as the dashboard's menu does (next-auth's signOut: a POST with the CSRF token); the jar loses its session cookie. */
export async function signOut(url: string, jar: CookieJar): Promise<void> {
  const token = await csrfToken(url, jar);
  const answer = await fetch(`${url}/api/auth/signout`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header() },
    body: new URLSearchParams({ csrfToken: token }),
  });
  jar.keep(answer);
  if (jar.get(SESSION_COOKIE)) throw new Error(`the sign-out did not clear the session cookie (status ${answer.status})`);
}

/**
 * The jar's session cookie re-issued by Auth.js's own encoder with the same session (its
 * claims, its id) but expiring in `seconds`: a session at the end of its life, without waiting
 * the 7 days.
 */
export async function expiringSoon(jar: CookieJar, secret: string, seconds: number): Promise<string> {
  const token = await decode({ token: jar.get(SESSION_COOKIE), secret, salt: SESSION_COOKIE });
  if (!token) throw new Error("the jar's session cookie could not be read");
  const { exp: _exp, iat: _iat, jti: _jti, ...claims } = token;
  const cookie = await encode({ token: claims, secret, salt: SESSION_COOKIE, maxAge: seconds });
  return `${SESSION_COOKIE}=${cookie}`;
}

/** What a session cookie (its value, or a `name=value` pair) holds: its session's id (`sid`) and expiry (`exp`, seconds since the epoch). */
export async function sessionClaims(cookie: string, secret: string): Promise<{ sid: unknown; exp: number }> {
  const value = cookie.startsWith(`${SESSION_COOKIE}=`) ? cookie.slice(SESSION_COOKIE.length + 1) : cookie;
  const token = await decode({ token: value, secret, salt: SESSION_COOKIE });
  if (typeof token?.exp !== "number") throw new Error("the session cookie could not be read");
  return { sid: token.sid, exp: token.exp };
}
