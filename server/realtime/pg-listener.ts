import pg from "pg";
import type { Logger } from "../logger";

/**
 * A dedicated connection LISTENing on Postgres channels, re-established with backoff when it
 * drops. Notifications can be lost during a reconnect; listeners only treat them as hints to
 * re-read authoritative state.
 */
export function listenToChannels(
  connectionString: string,
  channels: string[],
  onMessage: (channel: string, payload: string) => void,
  logger?: Logger,
  /** Told each time it listens again (the first time too): what was notified while it did not is lost. */
  onListening: () => void = () => {},
) {
  let client: pg.Client | null = null;
  let closed = false;
  let delay = 250;

  async function connect(): Promise<void> {
    const next = new pg.Client({ connectionString });
    next.on("notification", (message) => onMessage(message.channel, message.payload ?? ""));
    next.on("error", (error) => {
      logger?.warn({ err: error }, "notification connection lost");
      void next.end().catch(() => {});
      if (client === next) reconnect();
    });
    await next.connect();
    for (const channel of channels) await next.query(`listen ${pg.escapeIdentifier(channel)}`);
    client = next;
    delay = 250;
    onListening();
  }

  function reconnect() {
    client = null;
    if (closed) return;
    setTimeout(() => {
      if (!closed) connect().catch(reconnect);
    }, delay).unref();
    delay = Math.min(delay * 2, 5000);
  }

  const ready = connect();
  return {
    ready,
    async close() {
      closed = true;
      await client?.end().catch(() => {});
    },
  };
}
