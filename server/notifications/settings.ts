/** The instance's notification settings (SLIPWAY_NOTIFICATIONS_ALLOW_PRIVATE, SLIPWAY_ENGINE_DISCONNECT_GRACE_SECONDS). */
export type NotificationSettings = {
  /** Whether webhooks (generic, Slack, Discord) may go to private, loopback and link-local addresses (target-address.ts). */
  allowPrivateTargets: boolean;
  /** How long an engine may stay disconnected before engine.disconnected is sent (engine-events.ts). */
  engineDisconnectGraceMs: number;
};
