import type { DeploymentCause, Origin } from "../db/schema";
import { TOKEN_LABEL_PREFIX } from "../tokens/api-tokens";

export const triggerKinds = ["user", "token", "push", "schedule", "rollback", "promote", "clone", "system"] as const;
export type TriggerKind = (typeof triggerKinds)[number];

export type Trigger = {
  kind: TriggerKind;
  /** Who asked: a member's email, `token:<name>`, `github:<login>`, `scheduler`. */
  by: string;
  /** Through what: UI, API, CLI, WEBHOOK, SCHEDULER, SYSTEM. */
  via: Origin;
  /** A rollback's or promotion's source deployment. */
  fromDeploymentId: string | null;
  /** A promotion's or clone's source environment, by its name then. */
  fromEnvironment: string | null;
};

/**
 * Who or what made a deployment, from what it recorded (issue 15, item 2): a rollback, a
 * promotion or a clone first (they say where it comes from), else its origin and actor.
 */
export function triggerOf(row: { origin: Origin; actorLabel: string; rollbackOf: string | null; cause: DeploymentCause | null }): Trigger {
  const base = { by: row.actorLabel, via: row.origin, fromDeploymentId: null, fromEnvironment: null };
  if (row.rollbackOf) return { ...base, kind: "rollback", fromDeploymentId: row.rollbackOf };
  if (row.cause?.kind === "promote")
    return { ...base, kind: "promote", fromDeploymentId: row.cause.fromDeploymentId, fromEnvironment: row.cause.fromEnvironment };
  if (row.cause?.kind === "clone") return { ...base, kind: "clone", fromEnvironment: row.cause.fromEnvironment };
  switch (row.origin) {
    case "WEBHOOK":
      return { ...base, kind: "push" };
    case "SCHEDULER":
      return { ...base, kind: "schedule" };
    case "SYSTEM":
      return { ...base, kind: "system" };
    default:
      return { ...base, kind: row.actorLabel.startsWith(TOKEN_LABEL_PREFIX) ? "token" : "user" };
  }
}
