import type { Readable } from "node:stream";

export type Fd = "stdout" | "stderr";

/**
 * How long a stopped or finished container's log stream may take to deliver its last lines. A
 * busy Podman sends them seconds after the container exits (a CI run saw 2 s missed); a stream
 * that ends normally ends at once, so this only bounds a stuck one.
 */
export const LAST_LINES_WAIT_MS = 15_000;

/**
 * Splits a multiplexed attach/logs stream of the Engine API (containers without a TTY) into its
 * frames: an 8-byte header (stream type, 3 zero bytes, big-endian length) and the payload
 * (https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Container/operation/ContainerAttach).
 * Frames arrive in order across stdout and stderr, which is what keeps a resumed log in order.
 */
export function demultiplex(stream: Readable, onFrame: (fd: Fd, payload: Buffer) => void): void {
  let buffer: Buffer = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    while (buffer.length >= 8) {
      const length = buffer.readUInt32BE(4);
      if (buffer.length < 8 + length) break;
      const type = buffer[0];
      onFrame(type === 2 ? "stderr" : "stdout", buffer.subarray(8, 8 + length));
      buffer = buffer.subarray(8 + length);
    }
  });
}

/** Turns chunks into complete lines per fd; `flush` hands over what is left without a newline. */
export function lineSplitter(onLine: (fd: Fd, line: string) => void) {
  const pending: Record<Fd, string> = { stdout: "", stderr: "" };
  return {
    push(fd: Fd, chunk: Buffer | string) {
      const text = pending[fd] + chunk.toString();
      const lines = text.split("\n");
      pending[fd] = lines.pop() ?? "";
      for (const line of lines) onLine(fd, line.replace(/\r$/, ""));
    },
    flush() {
      for (const fd of ["stdout", "stderr"] as const) {
        if (pending[fd]) onLine(fd, pending[fd]);
        pending[fd] = "";
      }
    },
  };
}

/** Reads a JSON-lines progress stream (build, pull) and hands over each message. */
export function jsonLines(stream: Readable, onMessage: (message: Record<string, unknown>) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let rest = "";
    const handle = (line: string) => {
      if (!line.trim()) return;
      try {
        onMessage(JSON.parse(line) as Record<string, unknown>);
      } catch {
        onMessage({ stream: line });
      }
    };
    stream.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString("utf8")).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) handle(line);
    });
    stream.once("end", () => {
      handle(rest);
      resolve();
    });
    stream.once("close", () => resolve());
    stream.once("error", reject);
  });
}
