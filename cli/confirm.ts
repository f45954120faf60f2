import type { Context } from "./context";
import { usageError } from "./errors";

/**
 * Reads one line from standard input after saying what it is for: the name a destructive
 * command asks to be typed out, as the dashboard asks for it. Empty when input ends first.
 */
export async function typedLine(ctx: Context, prompt: string): Promise<string> {
  const stdin = ctx.io.stdin;
  if (!stdin) return "";
  ctx.note(prompt);
  let text = "";
  await new Promise<void>((resolve) => {
    const done = () => {
      stdin.off("data", onData);
      stdin.off("end", done);
      stdin.pause();
      resolve();
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      if (text.includes("\n")) done();
    };
    stdin.on("data", onData);
    stdin.on("end", done);
    stdin.resume();
  });
  return text.split(/\r?\n/)[0]!.trim();
}

export type Deletion = {
  /** What is deleted, for the messages: `environment demo/dev`. */
  what: string;
  /** What must be typed to confirm: the name alone, as the dashboard's dialogs ask. */
  name: string;
  /** What goes with it, said before the prompt. */
  consequence: string;
  /** `--yes`: the caller confirmed on the command line. */
  yes?: boolean;
};

/**
 * Refuses a deletion nobody confirmed: `--yes`, or the name typed at a terminal. Without a
 * terminal nothing can be typed (a script, CI), so the command stops before deleting anything
 * and says how to confirm, with the usage exit code, rather than waiting on input that never comes.
 */
export function assertDeletionConfirmable(ctx: Context, deletion: Pick<Deletion, "what" | "yes">): void {
  if (deletion.yes || ctx.io.stdin?.isTTY === true) return;
  throw usageError(`deleting ${deletion.what} needs confirmation: pass --yes (no terminal to type its name in): nothing was deleted`);
}

/** Asks for the name at a terminal unless `--yes` was given; throws when what was typed is not the name. */
export async function confirmDeletion(ctx: Context, deletion: Deletion): Promise<void> {
  assertDeletionConfirmable(ctx, deletion);
  if (deletion.yes) return;
  const typed = await typedLine(ctx, `This deletes ${deletion.what}: ${deletion.consequence}. Type its name (${deletion.name}) to confirm:`);
  if (typed !== deletion.name) throw usageError(`you typed "${typed}", not "${deletion.name}": nothing was deleted`);
}
