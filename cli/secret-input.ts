import fs from "node:fs/promises";
import type { Context } from "./context";
import { CliError, exitCodes, usageError } from "./errors";

/**
 * Secrets reach the CLI from standard input or a file, never as arguments: every user of the
 * host sees a process's arguments (`ps`, /proc/<pid>/cmdline), and shells keep them in their
 * history (issue 13). `--…-stdin` options read here.
 */

/** All of standard input, as text; one trailing newline (`echo`, a file's last line) is not part of the value. */
export async function readSecretFromStdin(ctx: Context, what: string): Promise<string> {
  const stdin = ctx.io.stdin;
  if (!stdin) throw usageError(`cannot read ${what} from standard input here`);
  if (stdin.isTTY) ctx.note(`Type ${what}, then Enter and Ctrl-D:`);
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer | string) => chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    const onEnd = () => {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      resolve();
    };
    stdin.on("data", onData);
    stdin.on("end", onEnd);
    stdin.resume();
  });
  const value = withoutFinalNewline(Buffer.concat(chunks).toString("utf8"));
  if (value === "") throw usageError(`standard input was empty: pipe ${what} in, e.g. printf %s "$VALUE" | slipway …`);
  return value;
}

/** A file's content (a token file, a `.env` file); `-` reads standard input. */
export async function readSecretFile(ctx: Context, file: string, what: string): Promise<string> {
  if (file === "-") return readSecretFromStdin(ctx, what);
  try {
    return await fs.readFile(file, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${what} from ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, exitCodes.usage, {
      cause: error,
    });
  }
}

/** A token file's token: the file without surrounding whitespace. */
export async function readTokenFile(ctx: Context, file: string, what: string): Promise<string> {
  const token = (await readSecretFile(ctx, file, what)).trim();
  if (token === "") throw usageError(`${file} holds no ${what}`);
  return token;
}

/** Exactly one way of giving a secret: the argument (still accepted, but visible to others) or its `-stdin`/`-file` form. */
export function oneOf(given: Record<string, unknown>): void {
  const names = Object.entries(given)
    .filter(([, value]) => value !== undefined && value !== false)
    .map(([name]) => name);
  if (names.length > 1) throw usageError(`give ${names.join(" or ")}, not both`);
}

function withoutFinalNewline(text: string): string {
  return text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
}
