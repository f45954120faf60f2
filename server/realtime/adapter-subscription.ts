import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { Namespace } from "socket.io";
import { checkConnection, LISTEN_CONNECTION_CHECK, type ConnectionCheck } from "./pg-listener";

/** The part of @socket.io/postgres-adapter 0.5's PostgresAdapter read here: its pub/sub client, whose `client` is set once every channel is LISTENed. */
type PubSubShape = { client?: { channels?: unknown; client?: unknown } };
type PubSub = { channels: Set<string>; client?: unknown };

/** The adapter's pub/sub client (one for every namespace), or null for another adapter or another version of this one. */
function pubsubOf(namespace: Namespace): PubSub | null {
  const pubsub = (namespace.adapter as unknown as PubSubShape | undefined)?.client;
  return pubsub && pubsub.channels instanceof Set ? (pubsub as PubSub) : null;
}

/**
 * Waits until the Postgres adapter of these namespaces LISTENs, then announces this process
 * again on each. The adapter announces a process (its initial heartbeat) as it is created,
 * before its connection listens: the other processes count this one from then on, but their
 * answers went unheard, so this one counted none of them until their next heartbeat, and a
 * broadcast they sent in between was never answered. Returns false when the adapter did not
 * listen within `timeoutMs` (the database is down: its next heartbeats catch up).
 */
export async function announceOnceSubscribed(namespaces: Namespace[], timeoutMs: number): Promise<boolean> {
  const pubsub = namespaces[0] && pubsubOf(namespaces[0]);
  if (!pubsub) return false;
  const deadline = Date.now() + timeoutMs;
  while (pubsub.client === undefined) {
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
  for (const nsp of namespaces) void nsp.adapter.init();
  return true;
}

/**
 * Calls `onListeningAgain` whenever the adapter's connection LISTENs again after it dropped (a
 * database restart, a terminated backend): what the other processes broadcast meanwhile never
 * reached this one, and is not replayed. The adapter says nothing when it reconnects; its
 * pub/sub client (one for every namespace) is checked every `intervalMs`. Returns a stop function.
 *
 * The adapter reconnects only when its connection ends, and an idle LISTEN connection whose
 * server vanished without closing it (a blackholed failover, a frozen VM) never ends: each
 * connection it listens on is also asked its last LISTEN again as pg-listener.ts's own is
 * (`check`), and cut when it does not answer, which makes the adapter reconnect.
 */
export function watchAdapterReconnects(
  namespace: Namespace,
  onListeningAgain: () => void,
  intervalMs = 1_000,
  check: ConnectionCheck = LISTEN_CONNECTION_CHECK,
): () => void {
  const pubsub = pubsubOf(namespace);
  if (!pubsub) return () => {};
  let listening = pubsub.client;
  let checked: unknown;
  let stopChecking = () => {};
  const timer = setInterval(() => {
    const current = pubsub.client;
    // A new connection, even one that replaced the last between two checks.
    if (current !== undefined && current !== listening) onListeningAgain();
    listening = current;
    if (current !== checked) {
      stopChecking();
      checked = current;
      // The adapter's own statement (`LISTEN "<channel>"`), for its last channel.
      const lastListen = () => {
        const channel = [...pubsub.channels].at(-1);
        return channel === undefined ? "select 1" : `LISTEN ${pg.escapeIdentifier(channel)}`;
      };
      stopChecking = current instanceof pg.Client ? checkConnection(current, check, lastListen) : () => {};
    }
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    stopChecking();
  };
}
