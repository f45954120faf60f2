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
  bitbucket: { header: "X-Hub-Signature (HMAC-SHA256): paste the secret in the webhook's Secret field", events: "Repository push and Pull request created/updated/fulfilled/rejected" },
  generic: { header: "X-Slipway-Signature: sha256=<HMAC-SHA256 hex of the body>, with X-Slipway-Event and a unique X-Slipway-Delivery", events: "push and pull_request" },
};

type PushSummary = { ref?: string; commit?: string; deployments?: unknown[]; skipped?: unknown[]; reason?: string };
type PreviewSummary = { pullRequest?: number; action?: string; previews?: { name?: string; deleted?: boolean }[]; skipped?: string };

/** One line of what a delivery did: its error, its reason, or per event the deployments and previews it made. */
export function outcomeSummary(delivery: Pick<Delivery, "status" | "outcome" | "error">): string {
  if (delivery.error) return delivery.error;
  const outcome = delivery.outcome;
  if (!outcome) return delivery.status === "PENDING" ? "Waiting to be processed" : "—";
  if (typeof outcome.reason === "string") return outcome.reason;
  const events = Array.isArray(outcome.events) ? (outcome.events as (PushSummary & PreviewSummary)[]) : [];
  if (events.length === 0) return "—";
  return events
    .map((event) => {
      if (event.pullRequest !== undefined) {
        if (event.skipped) return `PR #${event.pullRequest} ${event.action ?? ""}: ${event.skipped}`;
        const previews = event.previews ?? [];
        return `PR #${event.pullRequest} ${event.action ?? ""}: ${previews.length === 0 ? "no preview" : previews.map((p) => `${p.name ?? "?"}${p.deleted ? " deleted" : ""}`).join(", ")}`;
      }
      const at = `${event.ref ?? "?"}${event.commit ? ` @ ${event.commit.slice(0, 7)}` : ""}`;
      if (event.reason) return `${at}: ${event.reason}`;
      const deployed = event.deployments?.length ?? 0;
      const skipped = event.skipped?.length ?? 0;
      return `${at}: ${deployed} deployment${deployed === 1 ? "" : "s"}${skipped > 0 ? `, ${skipped} skipped` : ""}`;
    })
    .join("; ");
}

/** `{"a":1}` as indented JSON; a body that is not JSON as it is. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
