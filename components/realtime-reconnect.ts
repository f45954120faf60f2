import type { Socket } from "socket.io-client";
import type { AccessEnded, HandshakeRefusal } from "../server/realtime/ui-protocol";

/** Why live updates stopped when the browser's session is refused without the server having said why (it was offline meanwhile). */
export const NOT_SIGNED_IN = "this browser is no longer signed in";

/** The pause before the one reconnection after the server ended a connection. */
export const RECONNECT_DELAY_MS = 1_000;

type ReconnectingSocket = Pick<Socket, "on" | "off" | "connect">;

/** The server's refusal of a handshake, or undefined for a network failure (which socket.io retries by itself). */
function refusalOf(error: Error): HandshakeRefusal | undefined {
  const data = (error as { data?: Partial<HandshakeRefusal> }).data;
  return typeof data?.code === "string" ? { code: data.code } : undefined;
}

/**
 * socket.io reconnects by itself after a lost connection, but not after the server ended it. The
 * `/ui` gateway does that when the session the socket connected with ended: that cookie expired
 * (Auth.js may have renewed the browser's since), it signed out, or a GitHub takeover ended it
 * (server/realtime/ui-gateway.ts). So try once, after a pause, with the browser's current cookie:
 * a renewed session is back at once; a refused connection is not retried by socket.io, so one
 * that really ended stops there.
 *
 * `onEnded` hears why once it stopped there: the reason the server sent (`access:ended`) before
 * it disconnected, or NOT_SIGNED_IN for a session refused after a network failure. It hears null
 * once connected again. Returns what stops it.
 */
export function reconnectAfterServerDisconnect(
  socket: ReconnectingSocket,
  delayMs = RECONNECT_DELAY_MS,
  onEnded: (reason: string | null) => void = () => {},
): () => void {
  let pending: ReturnType<typeof setTimeout> | undefined;
  /** Why the server ended this connection's access, until a connection is back. */
  let endedBecause: string | undefined;
  const onAccessEnded = ({ reason }: AccessEnded) => {
    endedBecause = reason;
  };
  const onDisconnect = (reason: Socket.DisconnectReason) => {
    if (reason === "io server disconnect") pending = setTimeout(() => socket.connect(), delayMs);
  };
  const onConnect = () => {
    endedBecause = undefined;
    onEnded(null);
  };
  const onConnectError = (error: Error) => {
    const refusal = refusalOf(error);
    if (!refusal) return;
    // After an end of access, any refusal is final (socket.io does not retry it): say why it ended.
    if (endedBecause !== undefined) onEnded(endedBecause);
    else if (refusal.code === "UNAUTHORIZED") onEnded(NOT_SIGNED_IN);
  };
  socket.on("access:ended", onAccessEnded);
  socket.on("disconnect", onDisconnect);
  socket.on("connect", onConnect);
  socket.on("connect_error", onConnectError);
  return () => {
    clearTimeout(pending);
    socket.off("access:ended", onAccessEnded);
    socket.off("disconnect", onDisconnect);
    socket.off("connect", onConnect);
    socket.off("connect_error", onConnectError);
  };
}
