"use client";

import "@xterm/xterm/css/xterm.css";
import { Alert, Badge, Box, Button, Group, Text } from "@mantine/core";
import { IconRefresh } from "@tabler/icons-react";
import { useEffect, useRef, useState } from "react";
import { createSequenceBuffer } from "../../engine/protocol/sequence-buffer";
import type { AccessEnded, ShellExitMessage, ShellOutputMessage } from "../../server/realtime/ui-protocol";
import { useRealtimeSocket } from "../realtime";

type Status = { kind: "connecting" } | { kind: "open" } | { kind: "ended"; message: string } | { kind: "failed"; message: string };

/** A session id the client chooses, so it listens before the first output arrives (crypto.randomUUID needs a secure context). */
function newSessionId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A terminal (xterm.js) attached to a shell in the service's live release, over the tab's `/ui`
 * socket: keystrokes go out as `shell:input`, size changes as `shell:resize`, output comes back
 * as numbered `shell:output` (put in order here). Now and then an output message asks to be
 * acknowledged: it is once xterm.js has processed it, so a tab that falls behind (a slow link, a
 * busy or hidden tab) holds its session's process back instead of letting output pile up in the
 * web process or here. Leaving the page closes the session; a lost
 * connection ends it (the server closes it), and "New session" starts another.
 * Copy: select, then Ctrl+Shift+C; paste: Ctrl+Shift+V (or the browser's menu). Links open in a new tab.
 */
export function TerminalSession({ serviceId }: { serviceId: string }) {
  const socket = useRealtimeSocket();
  const container = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>({ kind: "connecting" });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (!socket || !container.current) return;
    const element = container.current;
    const sessionId = newSessionId();
    let disposed = false;
    let cleanup: () => void = () => {};
    setStatus({ kind: "connecting" });

    void (async () => {
      const [{ Terminal }, { FitAddon }, { WebLinksAddon }] = await Promise.all([
        import("@xterm/xterm"),
        import("@xterm/addon-fit"),
        import("@xterm/addon-web-links"),
      ]);
      if (disposed) return;
      const term = new Terminal({
        cursorBlink: true,
        fontSize: 13,
        fontFamily: "ui-monospace, 'JetBrains Mono', Menlo, monospace",
        scrollback: 5000,
        theme: { background: "#111318" },
      });
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.loadAddon(new WebLinksAddon((_event, uri) => window.open(uri, "_blank", "noopener,noreferrer")));
      term.open(element);
      fit.fit();
      term.focus();
      term.attachCustomKeyEventHandler((event) => {
        if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
        if (event.code === "KeyC" && term.hasSelection()) {
          void navigator.clipboard?.writeText(term.getSelection());
          return false;
        }
        if (event.code === "KeyV") {
          void navigator.clipboard?.readText().then((text) => term.paste(text));
          return false;
        }
        return true;
      });

      let ended = false;
      /** The acknowledgements asked for, by seq: answered once xterm.js has processed that output. */
      const acknowledgements = new Map<number, () => void>();
      const output = createSequenceBuffer<ShellOutputMessage>((message) => {
        const acknowledge = acknowledgements.get(message.seq);
        acknowledgements.delete(message.seq);
        term.write(message.data, acknowledge);
      });
      const onOutput = (message: ShellOutputMessage, acknowledge?: () => void) => {
        if (message.sessionId !== sessionId) return;
        // Already shown, or given up on (a gap skipped): nothing is left to wait for.
        if (message.seq < output.next) return acknowledge?.();
        if (acknowledge) acknowledgements.set(message.seq, acknowledge);
        output.push(message);
      };
      const finish = (message: string) => {
        if (ended) return;
        ended = true;
        term.write(`\r\n\x1b[2m[${message}]\x1b[0m\r\n`);
        setStatus({ kind: "ended", message });
      };
      /**
       * What ends the session, heard before its end is shown: the exit waits for the output before
       * it, and the disconnection that may follow meanwhile must not hide the reason.
       */
      let endedBecause: string | undefined;
      const onExit = (message: ShellExitMessage) => {
        if (message.sessionId !== sessionId) return;
        endedBecause ??= message.reason ? `session ended: ${message.reason}` : `process exited with code ${message.code ?? "unknown"}`;
        const deadline = Date.now() + 1000;
        const wait = () => {
          if (output.next >= message.seq || Date.now() > deadline) finish(endedBecause!);
          else setTimeout(wait, 10);
        };
        wait();
      };
      // The server says why the tab's access ended before it ends the shells and the connection.
      const onAccessEnded = ({ reason }: AccessEnded) => {
        endedBecause ??= `session ended: ${reason}`;
      };
      const onDisconnect = () => finish(endedBecause ?? "connection lost: the session was closed");
      socket.on("shell:output", onOutput);
      socket.on("shell:exit", onExit);
      socket.on("access:ended", onAccessEnded);
      socket.on("disconnect", onDisconnect);
      const input = term.onData((data) => {
        if (!ended) socket.emit("shell:input", { sessionId, data });
      });
      const resize = term.onResize(({ cols, rows }) => {
        if (!ended) socket.emit("shell:resize", { sessionId, cols, rows });
      });
      const observer = new ResizeObserver(() => fit.fit());
      observer.observe(element);

      cleanup = () => {
        if (!ended) socket.emit("shell:close", { sessionId });
        observer.disconnect();
        input.dispose();
        resize.dispose();
        socket.off("shell:output", onOutput);
        socket.off("shell:exit", onExit);
        socket.off("access:ended", onAccessEnded);
        socket.off("disconnect", onDisconnect);
        output.dispose();
        acknowledgements.clear();
        term.dispose();
      };
      if (disposed) return cleanup();

      const open = { sessionId, serviceId, cols: term.cols, rows: term.rows, acknowledgesOutput: true };
      socket.timeout(20_000).emit("shell:open", open, (error: Error | null, answer) => {
        if (disposed) return;
        if (error) return setStatus({ kind: "failed", message: "The control plane did not answer." });
        if (!answer.ok) {
          ended = true;
          return setStatus({ kind: "failed", message: answer.error });
        }
        setStatus({ kind: "open" });
      });
    })();

    return () => {
      disposed = true;
      cleanup();
    };
  }, [socket, serviceId, attempt]);

  return (
    <>
      <Group justify="space-between" mb="xs">
        <Group gap="xs">
          {status.kind === "open" && <Badge color="green">Connected</Badge>}
          {status.kind === "connecting" && <Badge color="gray">Connecting…</Badge>}
          {status.kind === "ended" && <Badge color="gray">Ended</Badge>}
          {status.kind === "failed" && <Badge color="red">Not connected</Badge>}
          <Text fz="xs" c="dimmed">
            Copy: select, then Ctrl+Shift+C · Paste: Ctrl+Shift+V · Sessions end after a while without input.
          </Text>
        </Group>
        {(status.kind === "ended" || status.kind === "failed") && (
          <Button size="xs" variant="default" leftSection={<IconRefresh size={14} />} onClick={() => setAttempt((n) => n + 1)}>
            New session
          </Button>
        )}
      </Group>
      {status.kind === "failed" && (
        <Alert color="red" mb="xs" title="Could not open a shell">
          {status.message}
        </Alert>
      )}
      <Box
        ref={container}
        role="region"
        aria-label="Terminal"
        data-session-status={status.kind}
        style={{ height: "calc(100vh - 280px)", minHeight: 320, background: "#111318", padding: 8, borderRadius: 8 }}
      />
    </>
  );
}
