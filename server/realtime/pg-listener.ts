import pg from "pg";
import { connectionSettings, destroyConnection } from "../db/client";
import type { Logger } from "../logger";

/**
 * How a LISTEN connection finds out that it is dead. An idle connection has nothing in flight
 * and hears nothing when its server vanished without closing it (a blackholed failover, a frozen
 * VM, a partition): without a question it would wait for notifications for ever. So it asks one
 * every `intervalMs`, and a connection that has not answered in `timeoutMs` is cut and replaced:
 * a dead one is noticed within `intervalMs + timeoutMs`.
 */
export type ConnectionCheck = { intervalMs: number; timeoutMs: number };
export const LISTEN_CONNECTION_CHECK: ConnectionCheck = { intervalMs: 3_000, timeoutMs: 5_000 };

/**
 * Sends `client` `question()` every `check.intervalMs` until stopped; one that gets no answer in
 * `check.timeoutMs`, or a failure, has its connection cut: its holder's `error` and `end`
 * handlers reconnect. Returns the stop function.
 *
 * For a LISTEN connection, the question is its last LISTEN statement again: a no-op for
 * PostgreSQL, and what `pg_stat_activity` shows as its last query stays the LISTEN that tells
 * an operator (and the tests) what the connection is.
 */
export function checkConnection(client: pg.Client, check: ConnectionCheck, question: () => string = () => "select 1"): () => void {
  for (const [name, value] of Object.entries(check)) {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`a connection check's ${name} must be a positive whole number of milliseconds (got ${value})`);
  }
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    if (!stopped) timer = setTimeout(ask, check.intervalMs).unref();
  };
  const ask = () => {
    let deadline: NodeJS.Timeout | undefined;
    const unanswered = new Promise<Error>((resolve) => {
      deadline = setTimeout(() => resolve(new Error(`the database did not answer within ${check.timeoutMs} ms`)), check.timeoutMs).unref();
    });
    const answered = client.query(question()).then(
      () => null,
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    void Promise.race([answered, unanswered]).then((failure) => {
      clearTimeout(deadline);
      if (stopped) return;
      if (!failure) return next();
      stopped = true;
      // Already cut when the failure is the connection's own end: then nothing more happens.
      destroyConnection(client, failure);
    });
  };
  next();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Ends a connection without waiting for the server's side (a dead one never closes it); no `error` follows. */
function discard(client: pg.Client): void {
  void client.end().catch(() => {});
  destroyConnection(client);
}

/**
 * A dedicated connection LISTENing on Postgres channels, re-established with backoff when it
 * drops or stops answering. Notifications can be lost during a reconnect; listeners only treat
 * them as hints to re-read authoritative state.
 */
export function listenToChannels(
  connectionString: string,
  channels: string[],
  onMessage: (channel: string, payload: string) => void,
  logger?: Logger,
  /** Told each time it listens again (the first time too): what was notified while it did not is lost. */
  onListening: () => void = () => {},
  check: ConnectionCheck = LISTEN_CONNECTION_CHECK,
) {
  let client: pg.Client | null = null;
  let closed = false;
  const lastChannel = channels.at(-1);
  const lastListen = lastChannel === undefined ? "select 1" : `listen ${pg.escapeIdentifier(lastChannel)}`;
  let delay = 250;

  async function connect(): Promise<void> {
    // Its connection and LISTEN statements are bounded as the checks are: a server that accepts
    // the connection and then says nothing must not hold the reconnection for ever.
    const next = new pg.Client({ ...connectionSettings({ connectTimeoutMs: check.timeoutMs, queryTimeoutMs: check.timeoutMs }), connectionString });
    let stopChecking = () => {};
    next.on("notification", (message) => onMessage(message.channel, message.payload ?? ""));
    next.on("error", (error) => {
      logger?.warn({ err: error }, "notification connection lost");
      stopChecking();
      discard(next);
      if (client === next) reconnect();
    });
    try {
      await next.connect();
      for (const channel of channels) await next.query(`listen ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      discard(next);
      throw error;
    }
    if (closed) return discard(next);
    client = next;
    stopChecking = checkConnection(next, check, () => lastListen);
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
      const last = client;
      client = null;
      if (!last) return;
      // A connection that is dead without knowing it never answers `end()`'s goodbye.
      const ended = await Promise.race([
        last.end().then(
          () => true,
          () => true,
        ),
        new Promise<false>((resolve) => setTimeout(resolve, check.timeoutMs, false).unref()),
      ]);
      if (!ended) destroyConnection(last);
    },
  };
}
