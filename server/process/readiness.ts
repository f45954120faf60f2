/**
 * How a child of `npm start` tells the supervisor it has started (web listens, the worker's
 * runner runs): one message over its IPC channel. The supervisor counts toward a crash loop only
 * the exits of processes that never said so, so that a healthy process killed from outside, or
 * one that exits because its database went away, is restarted however often that happens.
 */
export type ReadyMessage = { type: "ready" };

/** Tells the supervisor this process is ready; a no-op for a process started without an IPC channel. */
export function announceReady(): void {
  if (process.connected) process.send?.({ type: "ready" } satisfies ReadyMessage);
}

export function isReadyMessage(message: unknown): message is ReadyMessage {
  return typeof message === "object" && message !== null && (message as { type?: unknown }).type === "ready";
}
