/**
 * The events a notification rule can follow (issue 16, part 4). `certificate.renewal_failed` is
 * defined for the TLS renewal task to emit; nothing emits it yet.
 */
export const notificationEvents = [
  "deployment.started",
  "deployment.succeeded",
  "deployment.failed",
  "preview.created",
  "preview.deleted",
  "engine.disconnected",
  "certificate.renewal_failed",
] as const;
export type NotificationEvent = (typeof notificationEvents)[number];

/** What an event is about, as sent to every channel (the generic webhook's body, minus its envelope). */
export type NotificationSubject = {
  project?: { id: string; name: string };
  environment?: { id: string; name: string };
  deployment?: { id: string; action: string; status: string; message: string | null };
  preview?: { number: number; repository: string };
  cluster?: { id: string; name: string };
  /** One human sentence: the Slack, Discord and email text. */
  text: string;
};
