import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { Command } from "commander";
import { io, type Socket } from "socket.io-client";
import { createSequenceBuffer } from "../../engine/protocol/sequence-buffer";
import type { ShellExitMessage, ShellOutputMessage, UiClientEvents, UiServerEvents } from "../../server/realtime/ui-protocol";
import type { Context, Input, Output } from "../context";
import { CliError, exitCodes, type ExitCode } from "../errors";
import { resolveService } from "../paths";

type ShellSocket = Socket<UiServerEvents, UiClientEvents>;

const refusals: Record<string, ExitCode> = {
  FORBIDDEN: exitCodes.denied,
  UNAUTHORIZED: exitCodes.denied,
  NOT_FOUND: exitCodes.notFound,
  INVALID: exitCodes.usage,
  CONFLICT: exitCodes.conflict,
};

function connect(url: string, token: string): Promise<ShellSocket> {
  return new Promise((resolve, reject) => {
    const socket: ShellSocket = io(new URL("/ui", url).toString(), { auth: { token }, transports: ["websocket"], reconnection: false, timeout: 10_000 });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => {
      socket.disconnect();
      const denied = /token|sign in/i.test(error.message);
      reject(new CliError(`cannot open a realtime connection to ${url}: ${error.message}`, denied ? exitCodes.denied : exitCodes.failure));
    });
  });
}

/**
 * `slipway shell <project/env/service>`: a terminal in the service's live release (raw TTY,
 * resized with the window), or `slipway shell <service> -- <command…>`: runs one command (argv,
 * no terminal; piped input is forwarded) and exits with its exit code. Both go through `/ui` with
 * the API token, as the dashboard's terminal does, and need the DEVELOPER role.
 */
export function registerShellCommand(program: Command, ctx: Context): void {
  program
    .command("shell")
    .description("Open a shell in a service's running release, or run one command there (after --) and exit with its code")
    .argument("<project/env/service>")
    .argument("[command...]", "a command to run instead of the shell (put it after --)")
    .action(async (pathText: string, command: string[]) => {
      const config = await ctx.config();
      const { serviceId } = await resolveService(await ctx.api(), pathText);
      const socket = await connect(config.url, config.token);
      try {
        ctx.exitCode = await runSession(ctx, socket, serviceId, command.length > 0 ? command : undefined);
      } finally {
        socket.disconnect();
      }
    });
}

/**
 * Writes to stdout, then calls `done` once the chunk is written (a stream's write callback: for
 * a pipe to a slow reader, once it took it). Outputs that are not streams (tests' own) write at once.
 */
function writeThen(stdout: Output, data: string, done: (() => void) | undefined): void {
  if (!done) return void stdout.write(data);
  if (stdout instanceof Writable) return void stdout.write(data, () => done());
  stdout.write(data);
  done();
}

async function runSession(ctx: Context, socket: ShellSocket, serviceId: string, argv: string[] | undefined): Promise<number> {
  const sessionId = randomUUID();
  const stdin: Input | undefined = ctx.io.stdin;
  const interactive = !argv;
  const tty = interactive && stdin?.isTTY === true && typeof stdin.setRawMode === "function";
  const size = () => ({ cols: ctx.io.stdout.columns ?? 80, rows: ctx.io.stdout.rows ?? 24 });

  let settle!: (code: number) => void;
  let fail!: (error: Error) => void;
  const ended = new Promise<number>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // Awaited once the session is open; a refusal before that must not leave it unhandled.
  ended.catch(() => undefined);
  /** The acknowledgements asked for, by seq: answered once that output is written to stdout. */
  const acknowledgements = new Map<number, () => void>();
  const output = createSequenceBuffer<ShellOutputMessage>((message) => {
    const acknowledge = acknowledgements.get(message.seq);
    acknowledgements.delete(message.seq);
    writeThen(ctx.io.stdout, message.data, acknowledge);
  });
  socket.on("shell:output", (message, acknowledge) => {
    if (message.sessionId !== sessionId) return;
    // Already written, or given up on (a gap skipped): nothing is left to wait for.
    if (message.seq < output.next) return acknowledge?.();
    if (acknowledge) acknowledgements.set(message.seq, acknowledge);
    output.push(message);
  });
  socket.on("shell:exit", (message: ShellExitMessage) => {
    if (message.sessionId !== sessionId) return;
    // The output before the exit first (it may still be on its way through another web process).
    const deadline = Date.now() + 1000;
    const wait = () => {
      if (output.next >= message.seq || Date.now() > deadline) {
        if (message.reason && message.code === null) ctx.io.stderr.write(`\r\nshell ended: ${message.reason}\n`);
        settle(message.code ?? exitCodes.failure);
      } else setTimeout(wait, 10);
    };
    wait();
  });
  socket.on("disconnect", () => fail(new CliError("the connection to the control plane was lost")));
  const onAbort = () => socket.emit("shell:close", { sessionId });
  ctx.io.signal?.addEventListener("abort", onAbort, { once: true });

  const answer = await socket
    .timeout(30_000)
    // Output is acknowledged once written: a stdout that does not keep up (a slow terminal or
    // pipe) holds the remote process back instead of piling its output up on the way here.
    .emitWithAck("shell:open", { sessionId, serviceId, ...size(), argv, acknowledgesOutput: true })
    .catch(() => null);
  if (!answer) throw new CliError("the control plane did not answer the shell request");
  if (!answer.ok) throw new CliError(answer.error, refusals[answer.code ?? ""] ?? exitCodes.failure);

  const decoder = new StringDecoder("utf8");
  const send = (data: string, end = false) => socket.emit("shell:input", { sessionId, data, ...(end ? { end } : {}) });
  const onData = (chunk: Buffer | string) => {
    const text = typeof chunk === "string" ? chunk : decoder.write(chunk);
    for (let offset = 0; offset < text.length; offset += 32_768) send(text.slice(offset, offset + 32_768));
  };
  const onEnd = () => send(decoder.end(), true);
  const onResize = () => socket.emit("shell:resize", { sessionId, ...size() });
  if (tty) {
    stdin!.setRawMode!(true);
    process.on("SIGWINCH", onResize);
  }
  // Piped input goes to the command (or the shell); a terminal's input only to an interactive shell.
  const forwards = stdin !== undefined && (interactive || !stdin.isTTY);
  if (forwards) {
    stdin.on("data", onData);
    stdin.on("end", onEnd);
    stdin.resume();
  } else {
    send("", true);
  }
  try {
    return await ended;
  } finally {
    ctx.io.signal?.removeEventListener("abort", onAbort);
    output.dispose();
    if (forwards) {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.pause();
    }
    if (tty) {
      stdin!.setRawMode!(false);
      process.off("SIGWINCH", onResize);
    }
  }
}
