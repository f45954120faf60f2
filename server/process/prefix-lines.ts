import { StringDecoder } from "node:string_decoder";

/**
 * Turns a stream of output chunks into lines that each start with a label, so several
 * processes can share one terminal (`web    │ listening on :3000`). Chunks are split at any
 * point by pipes; a partial line is held back until its end arrives or the stream ends.
 */
export type LinePrefixer = {
  push(chunk: string | Buffer): void;
  /** Emits a held-back partial line, if any (call when the stream ends). */
  flush(): void;
};

export function createLinePrefixer(prefix: string, write: (text: string) => void): LinePrefixer {
  // A multi-byte character can be split between two chunks too.
  const decoder = new StringDecoder("utf8");
  let pending = "";
  return {
    push(chunk) {
      const text = pending + (typeof chunk === "string" ? chunk : decoder.write(chunk));
      const lines = text.split(/\r?\n/);
      pending = lines.pop() ?? "";
      if (lines.length > 0) write(lines.map((line) => `${prefix}${line}\n`).join(""));
    },
    flush() {
      pending += decoder.end();
      if (pending === "") return;
      write(`${prefix}${pending}\n`);
      pending = "";
    },
  };
}

const ansi = { reset: "\u001b[0m", dim: "\u001b[2m", bold: "\u001b[1m", red: "\u001b[31m" } as const;
// Colours that read well on light and dark terminals, assigned to processes in start order.
const palette = ["\u001b[36m", "\u001b[35m", "\u001b[33m", "\u001b[34m", "\u001b[32m", "\u001b[96m"] as const;

export type Paint = {
  label(name: string, index: number, width: number): string;
  dim(text: string): string;
  bold(text: string): string;
  red(text: string): string;
};

/** Styling helpers that become plain text when colours are off (a pipe, a file, NO_COLOR). */
export function createPaint(colors: boolean): Paint {
  const wrap = (code: string, text: string) => (colors ? `${code}${text}${ansi.reset}` : text);
  return {
    label: (name, index, width) => `${wrap(palette[index % palette.length]!, name.padEnd(width))} ${wrap(ansi.dim, "│")} `,
    dim: (text) => wrap(ansi.dim, text),
    bold: (text) => wrap(ansi.bold, text),
    red: (text) => wrap(ansi.red, text),
  };
}
