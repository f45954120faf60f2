import type { Outputs } from "../api-types";

export type Delivery = Outputs["git"]["deliveries"][number];
export type GitProvider = Outputs["git"]["list"][number]["provider"];

export const PROVIDERS: { value: GitProvider; label: string }[] = [
  { value: "github", label: "GitHub" },
  { value: "gitlab", label: "GitLab" },
  { value: "bitbucket", label: "Bitbucket" },
  { value: "generic", label: "Generic (your own CI or git server)" },
];

export function providerLabel(provider: GitProvider): string {
  return PROVIDERS.find((p) => p.value === provider)?.label.split(" (")[0] ?? provider;
}

/** Where the provider's webhook form takes the secret, and the events to send (README "Git integration"). */
export const PROVIDER_SETUP: Record<GitProvider, { header: string; events: string }> = {
  github: { header: "X-Hub-Signature-256 (HMAC-SHA256 of the body): paste the secret in the webhook's Secret field", events: "Push and Pull requests" },
  gitlab: { header: "X-Gitlab-Token: paste the secret in the webhook's Secret token field", events: "Push events, Tag push events and Merge request events" },
  bitbucket: {
    header: "X-Hub-Signature (HMAC-SHA256): paste the secret in the webhook's Secret field",
    events: "Repository push and Pull request created/updated/fulfilled/rejected",
  },
  generic: {
    header: "X-Slipway-Signature: sha256=<HMAC-SHA256 hex of the body>, with X-Slipway-Event and a unique X-Slipway-Delivery",
    events: "push and pull_request",
  },
};

/** `{"a":1}` as indented JSON; a body that is not JSON as it is. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
