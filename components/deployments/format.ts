/** Small formatters shared by the deployment views. */

import type { Deployment } from "./steps";

/** "850 ms", "12.4 s", "3 m 05 s", "1 h 02 m". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} m`;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/** From start to finish; to now while it runs; nothing before it starts. */
export function deploymentDurationMs(deployment: { startedAt: string | null; finishedAt: string | null; createdAt: string }, now: number): number | null {
  if (!deployment.startedAt) return deployment.finishedAt ? new Date(deployment.finishedAt).getTime() - new Date(deployment.createdAt).getTime() : null;
  const end = deployment.finishedAt ? new Date(deployment.finishedAt).getTime() : now;
  return end - new Date(deployment.startedAt).getTime();
}

type Trigger = Deployment["trigger"];

/** What made a deployment, in a few words for the history's "Trigger" column. */
export function triggerSummary(trigger: Trigger): string {
  switch (trigger.kind) {
    case "user":
      return originLabel(trigger.via);
    case "token":
      return `API token (${originLabel(trigger.via)})`;
    case "push":
      return "Git push";
    case "schedule":
      return "Schedule";
    case "rollback":
      return "Rollback";
    case "promote":
      return `Promoted from ${trigger.fromEnvironment}`;
    case "clone":
      return `Clone of ${trigger.fromEnvironment}`;
    case "system":
      return "Slipway";
  }
}

const ORIGIN_LABELS: Record<string, string> = { UI: "Dashboard", API: "API", CLI: "CLI", WEBHOOK: "Git push", SCHEDULER: "Schedule", SYSTEM: "Slipway" };
export function originLabel(origin: string): string {
  return ORIGIN_LABELS[origin] ?? origin;
}
