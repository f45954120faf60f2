import { StringDecoder } from "node:string_decoder";
import type { Logger } from "pino";
import type { Socket } from "socket.io-client";
import type { ControlPlaneClient } from "./control-plane-client";
import type { ShellExit, ShellInput, ShellKeepalive, ShellOpenRequest, ShellOutput, ShellResize } from "./protocol/shell";
import { createSequenceBuffer } from "./protocol/sequence-buffer";
import type { ExecOptions, ExecSession } from "./runtime/runtime";

type Exec = (serviceId: string, argv: string[], options: ExecOptions) => Promise<ExecSession>;
type Control = ({ kind: "input" } & ShellInput) | ({ kind: "resize" } & ShellResize) | { kind: "close"; seq: number; sessionId: string };

type Session = {
  exec: ExecSession;
  outSeq: number;
  controls: ReturnType<typeof createSequenceBuffer<Control>>;
  idle: NodeJS.Timeout | null;
  idleMs: number;
  /** Ends the session when its relay falls silent; null when the control plane sends no keepalives. */
  relaySilence: NodeJS.Timeout | null;
  relaySilenceMs: number | null;
  closing: string | null;
  /** Output characters shipped since the last message sent acknowledged. */
  sinceAcknowledged: number;
  /** Acknowledged messages not yet answered: at ACKS_IN_FLIGHT the session's output waits. */
  awaitingAcks: number;
  /** Called as an acknowledgement comes back (the exit waits for the output held back). */
  acknowledged: (() => void) | null;
};

/** Keepalives a relay may miss before its session ends: one late message is not a dead process. */
const MISSED_KEEPALIVES = 3;

/** Output is shipped in messages of at most this many characters (the protocol allows 64 Ki). */
const MAX_CHUNK = 32_768;

/**
 * Backpressure: one output message per this many characters goes acknowledged, and a session
 * with ACKS_IN_FLIGHT acknowledgements awaited stops reading its process (whose writes then
 * block on the full pipe or terminal) until one comes back. Without it `yes`, or `cat` of a big
 * file, over a link slower than the output piled everything up in the engine's socket buffers.
 * A session thus has at most about (ACKS_IN_FLIGHT + 1) × ACK_EVERY + MAX_CHUNK characters in
 * flight, whatever its link; the other messages (every keystroke's echo) go unacknowledged as
 * before. 4 × 64 Ki keeps a 100 ms round trip at some 2.5 MB/s, more than a terminal shows.
 */
const ACK_EVERY = 65_536;
const ACKS_IN_FLIGHT = 4;

/** How long the exit waits for the last output once nothing holds it back (a killed process may never end its stream). */
const LAST_OUTPUT_WAIT_MS = 1000;

/**
 * Resolves once a session whose process exited has shipped its last output: when its stream
 * ends, or after LAST_OUTPUT_WAIT_MS (a killed process, or one whose children keep the terminal,
 * may never end it). Output held back by awaited acknowledgements is a slow link, not a stuck
 * stream: the wait goes on until an acknowledgement lets it flow again.
 */
async function lastOutput(session: Session, outputDone: Promise<void>): Promise<void> {
  let ended = false;
  void outputDone.then(() => (ended = true));
  for (;;) {
    await Promise.race([outputDone, new Promise((resolve) => setTimeout(resolve, LAST_OUTPUT_WAIT_MS).unref())]);
    if (ended || session.closing || session.awaitingAcks < ACKS_IN_FLIGHT) return;
    await new Promise<void>((resolve) => (session.acknowledged = resolve));
    session.acknowledged = null;
  }
}

/**
 * The engine's shell sessions: each is a process in a service's live release (runtime `exec`),
 * its output shipped as numbered `shell:output` messages and its end as `shell:exit`. Input,
 * resize and close arrive numbered too and are applied in order. A session ends when its
 * process exits, when it sees no input for its idle timeout, when the control plane closes it,
 * when the web process holding its client falls silent (its keepalives stop: it died without
 * closing the session), or when the engine loses the control plane (nobody could see it any more).
 *
 * The engine trusts the control plane with who may open a session (it checked the member's
 * role and wrote the audit event); it logs session ids, never terminal contents.
 */
export function createShellSessions(options: {
  exec: Exec | undefined;
  send: (name: "shell:output" | "shell:exit", payload: ShellOutput | ShellExit) => void;
  /**
   * Sends output and resolves once the control plane acknowledged it (its client showed it), or
   * will not (refused, or the connection lost): not after a time, or a client silent longer lets
   * output out unasked (engine/control-plane-client.ts, UNTIL_ANSWERED).
   */
  sendAcknowledged: (payload: ShellOutput) => Promise<void>;
  logger: Logger;
  maxSessions?: number;
}) {
  const sessions = new Map<string, Session>();
  const { logger } = options;

  const armIdle = (sessionId: string, session: Session) => {
    if (session.idle) clearTimeout(session.idle);
    const idle = session.idleMs >= 60_000 ? `${Math.round(session.idleMs / 60_000)} minutes` : `${Math.round(session.idleMs / 1000)} seconds`;
    session.idle = setTimeout(() => end(sessionId, `no input for ${idle}`), session.idleMs);
    session.idle.unref();
  };

  /** Each word from the session's relay (keepalive, input, resize, close) restarts its silence timer. */
  const heardFromRelay = (sessionId: string, session: Session) => {
    if (session.relaySilenceMs === null) return;
    if (session.relaySilence) clearTimeout(session.relaySilence);
    const seconds = Math.round(session.relaySilenceMs / 1000);
    session.relaySilence = setTimeout(
      () => end(sessionId, `its client's web process fell silent (nothing heard for ${seconds} seconds)`),
      session.relaySilenceMs,
    );
    session.relaySilence.unref();
  };

  /** Ends a session from this side: the process is killed, `shell:exit` follows once its output is out. */
  const end = (sessionId: string, reason: string) => {
    const session = sessions.get(sessionId);
    if (!session || session.closing) return;
    session.closing = reason;
    session.exec.destroy();
  };

  const apply = (sessionId: string, session: Session, control: Control) => {
    if (control.kind === "close") return end(sessionId, "closed by the client");
    if (control.kind === "resize") {
      void session.exec.resize({ cols: control.cols, rows: control.rows }).catch(() => undefined);
      return;
    }
    armIdle(sessionId, session);
    if (control.data.length > 0 && !session.exec.writableEnded) session.exec.write(control.data);
    if (control.end && !session.exec.writableEnded) session.exec.end();
  };

  return {
    get size() {
      return sessions.size;
    },

    async open(request: ShellOpenRequest): Promise<void> {
      if (!options.exec) throw new Error("this engine's runtime cannot open shells");
      if (sessions.has(request.sessionId)) return;
      if (sessions.size >= (options.maxSessions ?? 32)) throw new Error(`this engine already runs ${sessions.size} shell sessions`);
      const exec = await options.exec(request.serviceId, request.argv ?? [], { tty: request.tty, cols: request.cols, rows: request.rows });
      const session: Session = {
        exec,
        outSeq: 0,
        idle: null,
        idleMs: request.idleTimeoutSeconds * 1000,
        relaySilence: null,
        relaySilenceMs: request.keepaliveSeconds === undefined ? null : request.keepaliveSeconds * 1000 * MISSED_KEEPALIVES,
        closing: null,
        sinceAcknowledged: 0,
        awaitingAcks: 0,
        acknowledged: null,
        controls: createSequenceBuffer<Control>((control) => apply(request.sessionId, session, control)),
      };
      sessions.set(request.sessionId, session);
      armIdle(request.sessionId, session);
      heardFromRelay(request.sessionId, session);
      logger.info({ sessionId: request.sessionId, serviceId: request.serviceId, tty: request.tty }, "shell session opened");

      const decoder = new StringDecoder("utf8");
      const ship = (text: string) => {
        for (let offset = 0; offset < text.length; offset += MAX_CHUNK) {
          const message = { sessionId: request.sessionId, seq: session.outSeq++, data: text.slice(offset, offset + MAX_CHUNK) };
          session.sinceAcknowledged += message.data.length;
          if (session.sinceAcknowledged < ACK_EVERY) {
            options.send("shell:output", message);
            continue;
          }
          session.sinceAcknowledged = 0;
          if (++session.awaitingAcks >= ACKS_IN_FLIGHT) exec.pause();
          void options.sendAcknowledged(message).then(() => {
            if (--session.awaitingAcks < ACKS_IN_FLIGHT) exec.resume();
            session.acknowledged?.();
          });
        }
      };
      exec.on("data", (chunk: Buffer | string) => {
        const text = typeof chunk === "string" ? chunk : decoder.write(chunk);
        if (text.length > 0) ship(text);
      });
      exec.on("error", (error) => logger.warn({ err: error, sessionId: request.sessionId }, "shell session stream failed"));
      const outputDone = new Promise<void>((resolve) => {
        exec.once("end", resolve);
        exec.once("close", resolve);
      });
      void exec.exited.then(async (code) => {
        await lastOutput(session, outputDone);
        const rest = decoder.end();
        if (rest) ship(rest);
        if (session.idle) clearTimeout(session.idle);
        if (session.relaySilence) clearTimeout(session.relaySilence);
        session.controls.dispose();
        sessions.delete(request.sessionId);
        options.send("shell:exit", {
          sessionId: request.sessionId,
          seq: session.outSeq,
          code: session.closing ? (code ?? null) : code,
          ...(session.closing ? { reason: session.closing } : {}),
        });
        logger.info({ sessionId: request.sessionId, code, reason: session.closing ?? undefined }, "shell session ended");
      });
    },

    input(message: ShellInput) {
      const session = sessions.get(message.sessionId);
      if (!session) return;
      heardFromRelay(message.sessionId, session);
      session.controls.push({ kind: "input", ...message });
    },
    resize(message: ShellResize) {
      const session = sessions.get(message.sessionId);
      if (!session) return;
      heardFromRelay(message.sessionId, session);
      session.controls.push({ kind: "resize", ...message });
    },
    /** The relay still holds these sessions' clients (other ids are another engine's, or ended). */
    keepalive(message: ShellKeepalive) {
      for (const sessionId of message.sessionIds) {
        const session = sessions.get(sessionId);
        if (session) heardFromRelay(sessionId, session);
      }
    },
    close(message: { sessionId: string; seq?: number }) {
      const session = sessions.get(message.sessionId);
      if (!session) return;
      heardFromRelay(message.sessionId, session);
      // Without a seq (a disconnected client) the close cannot wait for anything: end now.
      if (message.seq === undefined) end(message.sessionId, "closed by the client");
      else session.controls.push({ kind: "close", seq: message.seq, sessionId: message.sessionId });
    },
    /** Ends every session (the engine lost the control plane or is stopping). */
    closeAll(reason: string) {
      for (const sessionId of sessions.keys()) end(sessionId, reason);
    },
  };
}

export type ShellSessions = ReturnType<typeof createShellSessions>;

/**
 * Answers the control plane's shell messages on an engine's connection with `shells`: the
 * agent's wiring, and that of tests standing in for an engine. A message this engine cannot read
 * goes to `invalid`.
 */
export function serveShellMessages(client: ControlPlaneClient, socket: Socket, shells: ShellSessions, invalid: (name: string, reason: string) => void): void {
  client.on(
    socket,
    "shell:open",
    (request, reply) =>
      void shells.open(request).then(
        () => reply({ ok: true }),
        (error: unknown) => reply({ ok: false, error: { code: "UNAVAILABLE", message: (error as Error).message } }),
      ),
    invalid,
  );
  client.on(socket, "shell:input", (input) => shells.input(input), invalid);
  client.on(socket, "shell:resize", (resize) => shells.resize(resize), invalid);
  client.on(socket, "shell:close", (close) => shells.close(close), invalid);
  client.on(socket, "shell:keepalive", (keepalive) => shells.keepalive(keepalive), invalid);
}
