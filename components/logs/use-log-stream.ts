"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import type { RoomName, StreamedLogLine } from "../../server/realtime/ui-protocol";
import { useRealtimeSocket, useRoom, useSessionEnded } from "../realtime";
import { DEFAULT_CAP, emptyBuffer, mergeLines, type BufferedLine, type LogBuffer } from "./log-buffer";

/** Lines per API request while catching up; a shorter page means we have everything stored. */
export const PAGE_SIZE = 2000;
/** Wait before retrying a catch-up that failed while the socket was up. */
const RETRY_MS = 3000;

export type LogPageRequest = { after: number; limit: number } | { tail: number };
export type FetchLogPage = (request: LogPageRequest) => Promise<BufferedLine[]>;

export type LogStreamOptions = {
  /** `deployment:<id>` or `service:<id>`: where live lines arrive. */
  room: RoomName;
  fetchPage: FetchLogPage;
  /** Start with the last N lines instead of the whole log (runtime logs are long). */
  initialTail?: number;
  cap?: number;
  /** Which live lines to keep, when the pages come filtered (the same rules the API applied). */
  accept?: (line: StreamedLogLine) => boolean;
};

export type LogStream = {
  buffer: LogBuffer;
  /** Whether live lines are arriving (socket connected and the room joined). */
  connected: boolean;
  /** Why live lines stopped for good: the tab's session ended (realtime.tsx), so nothing reconnects. */
  ended: string | null;
  /** True until the first catch-up finished. */
  loading: boolean;
  error: string | null;
  retry: () => void;
};

/**
 * The lines of one log stream, from the API and the socket, with nothing lost or repeated across
 * a dropped connection (STYLE.md: the realtime channel notifies, the database is the truth).
 *
 * `confirmed` is the seq through which we are sure to hold every stored line. A catch-up reads
 * the API page by page after it until a short page; after every (re)join we catch up again from
 * it. Live lines always merge (by seq, so overlaps are harmless), but move `confirmed` only once
 * the current connection has caught up: the server emits a stream's lines in order after storing
 * them, so from then on a live line means every line before it is here. A line that arrives
 * right after a rejoin, before the catch-up, does not, since lines sent while we were away are
 * never replayed.
 */
export function useLogStream({ room, fetchPage, initialTail, cap = DEFAULT_CAP, accept }: LogStreamOptions): LogStream {
  const [buffer, setBuffer] = useState<LogBuffer>(emptyBuffer);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const bufferRef = useRef<LogBuffer>(emptyBuffer);
  const confirmed = useRef(0);
  const tailLoaded = useRef(initialTail === undefined);
  /** Bumped on every join and drop; a catch-up marks the stream caught up only for the session it started in. */
  const session = useRef(0);
  const joined = useRef(false);
  const caughtUp = useRef(false);
  const running = useRef(false);
  const retryTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const again = useRef(false);
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;

  const merge = useCallback(
    (lines: BufferedLine[]) => {
      const next = mergeLines(bufferRef.current, lines, cap);
      if (next === bufferRef.current) return;
      bufferRef.current = next;
      setBuffer(next);
    },
    [cap],
  );

  const catchUp = useCallback(async () => {
    if (running.current) {
      again.current = true;
      return;
    }
    running.current = true;
    try {
      do {
        again.current = false;
        const startedIn = session.current;
        if (!tailLoaded.current && initialTail !== undefined) {
          const page = await fetchRef.current({ tail: initialTail });
          merge(page);
          confirmed.current = Math.max(confirmed.current, page.at(-1)?.seq ?? 0);
          tailLoaded.current = true;
        }
        let cursor = confirmed.current;
        for (;;) {
          const page = await fetchRef.current({ after: cursor, limit: PAGE_SIZE });
          merge(page);
          if (page.length > 0) cursor = page[page.length - 1]!.seq;
          confirmed.current = Math.max(confirmed.current, cursor);
          if (page.length < PAGE_SIZE) break;
        }
        if (startedIn === session.current && joined.current) {
          // Everything stored before the last page is here, and everything after arrives live.
          caughtUp.current = true;
          confirmed.current = Math.max(confirmed.current, bufferRef.current.lastSeq);
        }
        setError(null);
      } while (again.current);
    } catch (cause) {
      // Offline, the rejoin catches up and the indicator already says so; a refusal (4xx) is
      // final; anything else while connected is retried shortly.
      const status = (cause as { data?: { httpStatus?: number } }).data?.httpStatus;
      const refused = status !== undefined && status >= 400 && status < 500;
      if (refused || joined.current) setError(cause instanceof Error ? cause.message : "Could not load the logs");
      if (!refused && joined.current) {
        clearTimeout(retryTimer.current);
        retryTimer.current = setTimeout(() => void catchUpRef.current(), RETRY_MS);
      }
    } finally {
      running.current = false;
      setLoading(false);
    }
  }, [initialTail, merge]);
  const catchUpRef = useRef(catchUp);
  catchUpRef.current = catchUp;
  useEffect(() => () => clearTimeout(retryTimer.current), []);

  const { connected } = useRoom(room, {
    onJoined: () => {
      session.current += 1;
      joined.current = true;
      caughtUp.current = false;
      void catchUp();
    },
    onLogLines: (batch) => {
      const kept = accept ? batch.lines.filter(accept) : batch.lines;
      const lines = kept.map(({ seq, at, fd, text }) => ({ seq, at, fd, text }));
      merge(lines);
      if (caughtUp.current) confirmed.current = Math.max(confirmed.current, bufferRef.current.lastSeq);
    },
  });

  // useRoom reports drops through React state, which may lag; the socket's own event does not.
  const socket = useRealtimeSocket();
  useEffect(() => {
    if (!socket) return;
    const dropped = () => {
      session.current += 1;
      joined.current = false;
      caughtUp.current = false;
    };
    socket.on("disconnect", dropped);
    return () => {
      socket.off("disconnect", dropped);
    };
  }, [socket]);

  // The first screen comes from the API even before (or without) a socket.
  useEffect(() => {
    void catchUp();
  }, [catchUp]);

  const ended = useSessionEnded();

  return { buffer, connected, ended, loading, error, retry: () => void catchUp() };
}
