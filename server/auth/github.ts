import GitHub from "@auth/core/providers/github";
import { z } from "zod";

/**
 * "Sign in with GitHub", tied to a Slipway account by email: only an address GitHub has
 * verified may do that. Auth.js's GitHub provider takes the account's primary address whether
 * or not it was verified, and anyone can add any address to a GitHub account, so a GitHub
 * account holding someone's address unverified would sign in as them (their memberships, their
 * instance admin rights). The profile here carries the primary address only when it is verified.
 */

export type GitHubApp = {
  clientId: string;
  clientSecret: string;
  /** GitHub Enterprise Server's address (`https://github.example.com`); github.com when unset. */
  enterpriseUrl?: string;
};

/** What `GET /user/emails` lists (https://docs.github.com/en/rest/users/emails). */
const accountEmails = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }).passthrough());

/** The account's primary address when GitHub has verified it; null otherwise (the sign-in is refused). */
export function verifiedPrimaryEmail(emails: z.infer<typeof accountEmails>): string | null {
  return emails.find((entry) => entry.primary && entry.verified)?.email ?? null;
}

function apiBaseUrl(app: GitHubApp): string {
  return app.enterpriseUrl ? `${app.enterpriseUrl.replace(/\/+$/, "")}/api/v3` : "https://api.github.com";
}

async function githubGet(url: string, accessToken: string | undefined): Promise<unknown> {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${accessToken}`, accept: "application/vnd.github+json", "user-agent": "slipway" },
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`GitHub answered ${response.status} to ${new URL(url).pathname}`);
  return response.json();
}

/** The GitHub provider for Auth.js, with a profile whose `email` is the verified primary address or null. */
export function gitHubProvider(app: GitHubApp) {
  const api = apiBaseUrl(app);
  return GitHub({
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    ...(app.enterpriseUrl ? { enterprise: { baseUrl: app.enterpriseUrl.replace(/\/+$/, "") } } : {}),
    userinfo: {
      url: `${api}/user`,
      async request({ tokens }: { tokens: { access_token?: string } }) {
        const profile = z
          .object({ id: z.number(), login: z.string() })
          .passthrough()
          .parse(await githubGet(`${api}/user`, tokens.access_token));
        // The public `email` of the profile is not used as it comes: the list says whether it is verified.
        const emails = accountEmails.parse(await githubGet(`${api}/user/emails`, tokens.access_token));
        return { ...profile, email: verifiedPrimaryEmail(emails) };
      },
    },
  });
}
