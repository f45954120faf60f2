import type { AddressInfo } from "node:net";
import net from "node:net";

export type FreezableProxy = {
  /** `upstreamUrl` (a postgres:// URL of the proxied server) as reached through the proxy: its host and port the proxy's, TCP only. */
  url: (upstreamUrl: string) => string;
  /**
   * The network goes silent, as when the database vanished without closing its connections (a
   * blackholed failover, a frozen VM, a partition): nothing is forwarded either way on any
   * connection, open or opened from now on, and none is closed. Bytes sent meanwhile wait in
   * the sockets' buffers, as TCP retransmits them.
   */
  freeze: () => void;
  /** The network comes back: every connection forwards again, what waited first. */
  thaw: () => void;
  /**
   * The failover completes elsewhere: connections opened from now on go through, while those
   * open now stay silent for good (their server is gone), until `closeAll()`.
   */
  failOver: () => void;
  /** Connections through the proxy now, and how many of them are silent. */
  connections: () => { open: number; frozen: number };
  /** Cuts every connection, as a server that closed them would. */
  closeAll: () => void;
  /** Cuts every connection and stops listening. */
  close: () => Promise<void>;
};

type Pair = { client: net.Socket; upstream: net.Socket; frozen: boolean };

/**
 * A TCP proxy on 127.0.0.1 in front of a PostgreSQL server, whose network a test can freeze
 * without closing a connection: what RST- and FIN-free outages look like to a client, which
 * restarting or stopping PostgreSQL (test/support/restartable-postgres.ts) never shows.
 */
export async function startFreezableProxy(upstream: { host: string; port: number }): Promise<FreezableProxy> {
  const pairs = new Set<Pair>();
  let frozen = false;

  const freezePair = (pair: Pair) => {
    pair.frozen = true;
    // Not reading is not forwarding: the sender's bytes stay in the kernel's buffers.
    pair.client.pause();
    pair.upstream.pause();
  };
  const thawPair = (pair: Pair) => {
    pair.frozen = false;
    pair.client.resume();
    pair.upstream.resume();
  };
  const cut = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  };

  const server = net.createServer((client) => {
    const pair: Pair = { client, upstream: net.connect(upstream.port, upstream.host), frozen: false };
    pairs.add(pair);
    // pipe() would resume a paused source on its own (when the destination drains): forwarding is by hand.
    client.on("data", (chunk: Buffer) => {
      if (!pair.upstream.write(chunk) && !pair.frozen) pair.client.pause();
    });
    pair.upstream.on("data", (chunk: Buffer) => {
      if (!client.write(chunk) && !pair.frozen) pair.upstream.pause();
    });
    pair.upstream.on("drain", () => pair.frozen || client.resume());
    client.on("drain", () => pair.frozen || pair.upstream.resume());
    for (const socket of [client, pair.upstream]) {
      socket.on("error", () => cut(pair));
      socket.on("close", () => cut(pair));
    }
    if (frozen) freezePair(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url(upstreamUrl) {
      const url = new URL(upstreamUrl);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      // A Unix socket directory in the URL would bypass the proxy.
      url.searchParams.delete("host");
      return url.toString();
    },
    freeze() {
      frozen = true;
      for (const pair of pairs) freezePair(pair);
    },
    thaw() {
      frozen = false;
      for (const pair of pairs) thawPair(pair);
    },
    failOver() {
      frozen = false;
    },
    connections: () => ({ open: pairs.size, frozen: [...pairs].filter((pair) => pair.frozen).length }),
    closeAll() {
      for (const pair of pairs) cut(pair);
    },
    async close() {
      for (const pair of pairs) cut(pair);
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
