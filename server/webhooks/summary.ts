/**
 * One line of what a delivery did, for lists (dashboard, CLI): its error, its reason, or per
 * event the deployments and previews it made. Written here, beside the outcome it reads
 * (process.ts, previews.ts), so that its readers need not know the outcome's shape.
 */
type PushOutcome = { ref?: string; commit?: string; deployments?: unknown[]; skipped?: unknown[]; reason?: string; changedFilesUnknown?: string };
type PreviewOutcome = {
  pullRequest?: number;
  action?: string;
  previews?: { name?: string; deleted?: boolean }[];
  skipped?: string;
  skippedBlueprints?: { blueprint?: string }[];
  unchanged?: { name?: string }[];
};

export function summarizeDelivery(delivery: { status: string; outcome: Record<string, unknown> | null; error: string | null }): string {
  if (delivery.error) return delivery.error;
  const outcome = delivery.outcome;
  if (!outcome) return delivery.status === "PENDING" ? "waiting to be processed" : "";
  if (typeof outcome.reason === "string") return outcome.reason;
  const events = Array.isArray(outcome.events) ? (outcome.events as (PushOutcome & PreviewOutcome)[]) : [];
  return events
    .map((event) => {
      if (event.pullRequest !== undefined) {
        if (event.skipped) return `PR #${event.pullRequest} ${event.action ?? ""}: ${event.skipped}`;
        const previews = event.previews ?? [];
        // A blueprint whose preview no name could be found for: its reason, long, is the delivery's to show.
        const unnamed = (event.skippedBlueprints ?? []).map((skipped) => `no preview of ${skipped.blueprint ?? "?"} (no name fits)`);
        const made = previews.map((p) => `${p.name ?? "?"}${p.deleted ? " deleted" : ""}`);
        const unchanged = (event.unchanged ?? []).map((p) => `${p.name ?? "?"} unchanged`);
        const all = [...made, ...unchanged, ...unnamed];
        return `PR #${event.pullRequest} ${event.action ?? ""}: ${all.length === 0 ? "no preview" : all.join(", ")}`;
      }
      const at = `${event.ref ?? "?"}${event.commit ? `@${event.commit.slice(0, 7)}` : ""}`;
      if (event.reason) return `${at}: ${event.reason}`;
      const deployed = event.deployments?.length ?? 0;
      const skipped = event.skipped?.length ?? 0;
      const unfiltered = event.changedFilesUnknown ? ` (path filters not applied: ${event.changedFilesUnknown})` : "";
      return `${at}: ${deployed} deployment${deployed === 1 ? "" : "s"}${skipped > 0 ? `, ${skipped} skipped` : ""}${unfiltered}`;
    })
    .join("; ");
}
