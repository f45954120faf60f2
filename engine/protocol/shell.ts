import { z } from "zod";

/**
 * Shell sessions: a process (a shell, or one command) started in a service's live release and
 * relayed between a client (browser or CLI, on `/ui`) and the engine (on `/engine`) by the web
 * process. Terminal data travels as UTF-8 strings (binary would go through the socket.io
 * Postgres adapter's attachment table on every keystroke).
 *
 * Every message of a session carries `seq`, increasing per direction: socket.io rooms relayed
 * through the Postgres adapter may deliver two messages out of order, and the receiver puts
 * them back in order (see ./sequence-buffer.ts).
 */
export const shellSessionId = z.string().uuid();

/** 64 KiB of terminal data per message at most: big outputs are split by the sender. */
const terminalData = z.string().max(65_536);
const cols = z.number().int().min(2).max(1000);
const rows = z.number().int().min(1).max(500);

/** Control plane to engine: start a session (acknowledged with `{ ok }`). */
export const shellOpenRequest = z.object({
  sessionId: shellSessionId,
  serviceId: z.string().uuid(),
  /** A command to run instead of the release's shell (`slipway shell … -- cmd`); argv, never a shell string. */
  argv: z.array(z.string().max(4000)).min(1).max(200).optional(),
  /** A pseudo-terminal (interactive shells) or plain pipes (commands). */
  tty: z.boolean(),
  cols: cols.default(80),
  rows: rows.default(24),
  /** Ends the session after this long without input. */
  idleTimeoutSeconds: z.number().int().min(1).max(86_400).default(900),
  /**
   * The client's web process says `shell:keepalive` this often: a session that hears nothing
   * from it (keepalive, input, resize) for three times as long lost its client with that process
   * (killed, its machine gone) and ends. Absent from a control plane that predates keepalives.
   */
  keepaliveSeconds: z.number().int().min(1).max(3600).optional(),
});
export type ShellOpenRequest = z.infer<typeof shellOpenRequest>;

/** Input, resize and close share one sequence, so a resize lands between the keystrokes around it. */
export const shellInput = z.object({ sessionId: shellSessionId, seq: z.number().int().nonnegative(), data: terminalData, end: z.boolean().optional() });
export const shellResize = z.object({ sessionId: shellSessionId, seq: z.number().int().nonnegative(), cols, rows });
export const shellClose = z.object({ sessionId: shellSessionId, seq: z.number().int().nonnegative().optional() });
/** Sessions named by one keepalive at most: a web process with more sends several. */
export const MAX_KEEPALIVE_SESSIONS = 1000;
/** The sessions whose clients a web process still holds; unordered, outside the sessions' sequences. */
export const shellKeepalive = z.object({ sessionIds: z.array(shellSessionId).min(1).max(MAX_KEEPALIVE_SESSIONS) });

/** Engine to control plane (and on to the client). */
export const shellOutput = z.object({ sessionId: shellSessionId, seq: z.number().int().nonnegative(), data: terminalData });
export const shellExit = z.object({
  sessionId: shellSessionId,
  /** The output's last seq + 1: a receiver waits for the output before it ends. */
  seq: z.number().int().nonnegative(),
  /** The process's exit code; null when it was killed or the runtime cannot tell. */
  code: z.number().int().nullable(),
  /** Why the session ended, when the process did not end by itself ("idle for 15 minutes"). */
  reason: z.string().max(500).optional(),
});
export type ShellOutput = z.infer<typeof shellOutput>;
export type ShellExit = z.infer<typeof shellExit>;
export type ShellInput = z.infer<typeof shellInput>;
export type ShellResize = z.infer<typeof shellResize>;
export type ShellKeepalive = z.infer<typeof shellKeepalive>;
