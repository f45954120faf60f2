import { sql, type SQL } from "drizzle-orm";
import type { Executor } from "../db/client";

/**
 * Notifications for engines travel through Postgres (NOTIFY, delivered on commit) to whichever
 * web process holds the engine's socket; the engine then pulls, or takes the task the message
 * carries. A lost notification costs nothing: engines also pull on connect and on every heartbeat.
 */
export const ENGINE_CHANNEL = "slipway_engine";

export type EngineNotification =
  /** A deployment was leased to the cluster: the web process holding its engine's socket sends the task with it (issue 17). */
  | { clusterId: string; type: "task:available"; deploymentId: string }
  | { clusterId: string; type: "deployment:cancel"; deploymentId: string }
  /** The cluster's custom domains changed: its engine pulls them for its router (server/domains). */
  | { clusterId: string; type: "edge:changed" }
  /** The cluster's engine token was revoked or rotated: connected engines are disconnected. */
  | { clusterId: string; type: "engine:revoked" };

export async function notifyEngine(db: Executor, notification: EngineNotification): Promise<void> {
  await db.execute(sql`select ${engineNotifyCall(notification)}`);
}

/** The NOTIFY of {@link notifyEngine} as an expression, for a caller that sends it with a statement of its own (one round trip fewer). */
export function engineNotifyCall(notification: EngineNotification): SQL {
  return sql`pg_notify(${ENGINE_CHANNEL}, ${engineNotice(notification)})`;
}

/** The payload of an engine notification on ENGINE_CHANNEL, for a prepared statement that sends it. */
export function engineNotice(notification: EngineNotification): string {
  return JSON.stringify(notification);
}
