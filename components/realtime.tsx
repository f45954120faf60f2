"use client";

import { useQueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { io, type Socket } from "socket.io-client";
import { useLiveStatus } from "./live-status";
import { RECONNECT_DELAY_MS, reconnectAfterServerDisconnect } from "./realtime-reconnect";
import { keepSessionAlive } from "./session-keepalive";
import { useTRPC } from "./trpc";
import type { DeploymentChanged, LogLines, RoomName, UiClientEvents, UiServerEvents } from "../server/realtime/ui-protocol";

type UiSocket = Socket<UiServerEvents, UiClientEvents>;

export type RoomHandlers = {
  onDeploymentChanged?: (change: DeploymentChanged) => void;
  onLogLines?: (batch: LogLines) => void;
  /**
   * Called after every (re)connect once the room is joined, and on the server's
   * `realtime:resync`: re-read what the view shows from the API (logs after the last seq, events
   * after the last id), since messages sent while disconnected are not replayed.
   */
  onJoined?: () => void;
  onJoinState?: (joined: boolean) => void;
};

/** What the tab's connection asks of the API about its session (see RealtimeProvider). */
type SessionCalls = {
  /**
   * Keeps an open tab's session alive (session-keepalive.ts): a call of the whoami query the
   * dashboard guards its pages with, so that a session that ended meanwhile (401) is in its state
   * and the dashboard goes to the sign-in page as after any move. A failure stays there; the next
   * renewal is an interval later.
   */
  renew: () => void;
};

function useSessionCalls(): { current: SessionCalls } {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const calls = useRef<SessionCalls>({ renew: () => {} });
  calls.current = {
    renew: () => void queryClient.fetchQuery(trpc.organization.whoami.queryOptions({}, { staleTime: 0 })).catch(() => undefined),
  };
  return calls;
}

type Realtime = { socket: UiSocket; join: (room: RoomName, handlers: { current: RoomHandlers }) => () => void };

const RealtimeContext = createContext<Realtime | null>(null);
/** Why the tab's live updates stopped for good (its session ended), or null while they may go on. */
const SessionEndedContext = createContext<string | null>(null);

/**
 * One socket.io connection to `/ui` per tab, authenticated by the session cookie. Rooms are
 * counted per tab: the server is asked to join a room when its first subscriber mounts, to leave
 * it when its last one unmounts, and to join every room again after each reconnect. A
 * `realtime:resync` (the server's own notifications had a gap) re-reads every room's view.
 */
export function RealtimeProvider({ children }: { children: ReactNode }) {
  const [realtime, setRealtime] = useState<Realtime | null>(null);
  const [ended, setEnded] = useState<string | null>(null);
  const session = useSessionCalls();
  useEffect(() => {
    const socket: UiSocket = io("/ui", { withCredentials: true, transports: ["websocket"] });
    const rooms = new Map<RoomName, Set<{ current: RoomHandlers }>>();

    const subscribe = (room: RoomName) => {
      socket.emit("subscribe", { room }, (answer) => {
        for (const handlers of rooms.get(room) ?? []) {
          handlers.current.onJoinState?.(answer.ok);
          if (answer.ok) handlers.current.onJoined?.();
        }
      });
    };
    socket.on("connect", () => {
      for (const room of rooms.keys()) subscribe(room);
    });
    socket.on("disconnect", () => {
      for (const members of rooms.values()) for (const handlers of members) handlers.current.onJoinState?.(false);
    });
    const keepalive = keepSessionAlive(() => session.current.renew(), { page: document });
    // Signing in again loads the page anew (components/signin/sign-in-form.tsx): a new connection then.
    const stopReconnecting = reconnectAfterServerDisconnect(socket, RECONNECT_DELAY_MS, (reason) => {
      setEnded(reason);
      // Signed in from its first connection (the handshake checks the session) until its session
      // ended: a connection that dropped meanwhile is still a signed-in tab to keep alive.
      keepalive.setActive(reason === null);
    });
    socket.on("deployment:changed", (change) => {
      for (const room of [`environment:${change.environmentId}`, `deployment:${change.deploymentId}`] as RoomName[]) {
        for (const handlers of rooms.get(room) ?? []) handlers.current.onDeploymentChanged?.(change);
      }
    });
    socket.on("log:lines", (batch) => {
      for (const handlers of rooms.get(batch.stream) ?? []) handlers.current.onLogLines?.(batch);
    });
    // Still connected, but the server may have missed messages for this tab: re-read as after a reconnect.
    socket.on("realtime:resync", () => {
      for (const members of rooms.values()) for (const handlers of members) handlers.current.onJoined?.();
    });

    const join = (room: RoomName, handlers: { current: RoomHandlers }) => {
      let members = rooms.get(room);
      if (!members) {
        members = new Set();
        rooms.set(room, members);
      }
      members.add(handlers);
      if (members.size === 1) {
        if (socket.connected) subscribe(room);
      } else if (socket.connected) {
        // Already joined for another subscriber: this one still re-reads from the API once.
        handlers.current.onJoinState?.(true);
        handlers.current.onJoined?.();
      }
      return () => {
        members.delete(handlers);
        if (members.size > 0) return;
        rooms.delete(room);
        if (socket.connected) socket.emit("unsubscribe", { room });
      };
    };

    setRealtime({ socket, join });
    return () => {
      stopReconnecting();
      keepalive.stop();
      socket.disconnect();
    };
  }, []);
  useLiveStatus(realtime?.socket ?? null);
  return (
    <RealtimeContext.Provider value={realtime}>
      <SessionEndedContext.Provider value={ended}>{children}</SessionEndedContext.Provider>
    </RealtimeContext.Provider>
  );
}

/**
 * Why the tab's session ended (the server's reason: "signed out in this browser", "signed out:
 * the session expired, sign in again"…) once its live connection was refused for good, or null.
 */
export function useSessionEnded(): string | null {
  return useContext(SessionEndedContext);
}

export function useRealtimeSocket(): UiSocket | null {
  return useContext(RealtimeContext)?.socket ?? null;
}

/** Subscribes to a room for the lifetime of the component; `connected` says whether updates are live. */
export function useRoom(room: RoomName | null, handlers: RoomHandlers): { connected: boolean } {
  const realtime = useContext(RealtimeContext);
  const [connected, setConnected] = useState(false);
  const latest = useRef<RoomHandlers>(handlers);
  latest.current = { ...handlers, onJoinState: setConnected };

  useEffect(() => {
    if (!realtime || !room) return;
    const leave = realtime.join(room, latest);
    return () => {
      leave();
      setConnected(false);
    };
  }, [realtime, room]);

  return { connected };
}
