/**
 * Why a sign-in was refused, as the sign-in page says it (components/signin/sign-in-form.tsx).
 * Auth.js sends a refused sign-in to that page with an `error` code in the query (server/auth/sessions.ts,
 * `pages`); the page shows the fixed message of a code it knows and a generic one otherwise, never
 * the query's text: anyone can link to `/signin?error=…` with words of their choosing.
 * Pure data: the browser bundle imports it.
 */

/** The GitHub account has no primary address GitHub verified (server/auth/github.ts). */
export const GITHUB_EMAIL_UNVERIFIED = "GitHubEmailUnverified";
/** No account has the GitHub account's address, and only invitations create accounts (server/instance/settings.ts). */
export const SIGNUP_CLOSED = "SignupClosed";

const MESSAGES: Record<string, string> = {
  [GITHUB_EMAIL_UNVERIFIED]: "Your GitHub account has no verified primary email address. Verify your primary email on GitHub, then sign in again.",
  [SIGNUP_CLOSED]: "No account here has your GitHub email, and sign-up is closed on this Slipway: ask an admin for an invitation.",
  // Auth.js's own codes (https://authjs.dev/guides/pages/error): a password form posted without JavaScript, a
  // sign-in GitHub did not grant (cancelled on its page), or one that failed on the way (GitHub unreachable).
  CredentialsSignin: "Wrong email or password.",
  OAuthCallbackError: "GitHub did not grant the sign-in. Try again.",
};

const OTHERWISE = "The sign-in did not complete. Try again, or ask an admin if it keeps failing.";

/** The message for the sign-in page's `?error=` code, or null without one. */
export function signInRefusalMessage(query: URLSearchParams): string | null {
  const error = query.get("error");
  if (!error) return null;
  return Object.hasOwn(MESSAGES, error) ? MESSAGES[error]! : OTHERWISE;
}
