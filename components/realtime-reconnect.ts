import type { Socket } from "socket.io-client";

/**
 * socket.io reconnects by itself after a lost connection, but not after the server ended it. The
 * `/ui` gateway does that when the session the socket connected with ended: that cookie expired
 * (Auth.js may have renewed the browser's since), it signed out, or a GitHub takeover ended it
 * (server/realtime/ui-gateway.ts). So try once, after a pause, with the browser's current cookie:
 * a renewed session is back at once; a refused connection is not retried by socket.io, so one
 * that really ended stops there. Returns what stops it.
 */
export function reconnectAfterServerDisconnect(socket: Pick<Socket, "on" | "off" | "connect">, delayMs = 1_000): () => void {
  let pending: ReturnType<typeof setTimeout> | undefined;
  const onDisconnect = (reason: Socket.DisconnectReason) => {
    if (reason === "io server disconnect") pending = setTimeout(() => socket.connect(), delayMs);
  };
  socket.on("disconnect", onDisconnect);
  return () => {
    clearTimeout(pending);
    socket.off("disconnect", onDisconnect);
  };
}
