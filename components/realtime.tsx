"use client";

import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { io, type Socket } from "socket.io-client";
import type { DeploymentChanged, LogLines, RoomName, UiClientEvents, UiServerEvents } from "../server/realtime/ui-protocol";

type UiSocket = Socket<UiServerEvents, UiClientEvents>;

const RealtimeContext = createContext<UiSocket | null>(null);

/**
 * One socket.io connection to `/ui` per tab, authenticated by the session cookie. socket.io
 * reconnects with backoff by itself; rooms are re-joined on every connect (see useRoom).
 */
export function RealtimeProvider({ children }: { children: ReactNode }) {
  const [socket, setSocket] = useState<UiSocket | null>(null);
  useEffect(() => {
    const connection: UiSocket = io("/ui", { withCredentials: true, transports: ["websocket"] });
    setSocket(connection);
    return () => {
      connection.disconnect();
    };
  }, []);
  return <RealtimeContext.Provider value={socket}>{children}</RealtimeContext.Provider>;
}

export function useRealtimeSocket(): UiSocket | null {
  return useContext(RealtimeContext);
}

export type RoomHandlers = {
  onDeploymentChanged?: (change: DeploymentChanged) => void;
  onLogLines?: (batch: LogLines) => void;
  /**
   * Called after every (re)connect once the room is joined: re-read what the view shows from
   * the API (logs after the last seq, events after the last id), since messages sent while
   * disconnected are not replayed.
   */
  onJoined?: () => void;
};

/** Subscribes to a room for the lifetime of the component; `connected` says whether updates are live. */
export function useRoom(room: RoomName | null, handlers: RoomHandlers): { connected: boolean } {
  const socket = useRealtimeSocket();
  const latest = useRef(handlers);
  latest.current = handlers;
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    if (!socket || !room) return;
    const join = () => {
      socket.emit("subscribe", { room }, (answer) => {
        setConnected(answer.ok);
        if (answer.ok) latest.current.onJoined?.();
      });
    };
    const changed = (change: DeploymentChanged) => latest.current.onDeploymentChanged?.(change);
    const lines = (batch: LogLines) => {
      if (batch.stream === room) latest.current.onLogLines?.(batch);
    };
    const dropped = () => setConnected(false);
    socket.on("connect", join);
    socket.on("disconnect", dropped);
    socket.on("deployment:changed", changed);
    socket.on("log:lines", lines);
    if (socket.connected) join();
    return () => {
      socket.off("connect", join);
      socket.off("disconnect", dropped);
      socket.off("deployment:changed", changed);
      socket.off("log:lines", lines);
      if (socket.connected) socket.emit("unsubscribe", { room });
    };
  }, [socket, room]);

  return { connected };
}
