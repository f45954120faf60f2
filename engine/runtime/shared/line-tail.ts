import { stripVTControlCharacters } from "node:util";
import { EVENT_MESSAGE_MAX } from "../../protocol/events";

/**
 * What a failed command's message quotes of its output (issue 15, item 3: the page leads with
 * why). A build or a crash says what went wrong in one line (`Error: Cannot find module 'x'`,
 * `[UNRESOLVED_IMPORT] Could not resolve './a.css'`, `ERROR: No matching distribution`) and
 * then often prints a long stack after it, so its last lines alone may miss that line: the
 * first line that reads as an error is kept, with the few after it, ahead of the last lines.
 */

/** How many last lines are kept: a Node stack with its require stack, or a bundler's code frame, fits (the dashboard's box scrolls). */
export const TAIL_LINES = 60;
/** The first error line and the lines after it that say more (Node's `Require stack:` and its files). */
const PINNED_LINES = 4;
/** Past this, a line (a minified bundle, a progress bar redrawn in place) is cut: one line must not crowd out the others. */
const LINE_CHARS_MAX = 500;
/**
 * The characters the kept lines may take: an event's message holds them after the step's first
 * line, and the agent cuts a longer message in its middle (shortenText), where the error line is.
 */
export const TAIL_CHARS_MAX = EVENT_MESSAGE_MAX - 1000;

/**
 * A line that says something failed, in the words of the tools apps are built and run with:
 * JavaScript's and Python's errors and exceptions, npm/pip/yarn/vite `error`/`ERROR` lines, git's
 * `fatal:`, Python's traceback, and Rolldown's or esbuild's `[CODE]`. Matched once ANSI colours
 * are gone, which often wrap the word.
 */
const ERROR_LINE =
  /^\s*(?:[\w.$]*(?:Error|Exception)\b|error\b|ERROR\b|fatal:|FATAL\b|npm ERR!|Traceback \(most recent call last\)|✘ \[ERROR\]|\[[A-Z][A-Z0-9_]{2,}\])/;

export function isErrorLine(line: string): boolean {
  return ERROR_LINE.test(line);
}

/** A line as the failure's message shows it: plain text (no colours, cursor moves or hyperlinks), not too long. */
function plainLine(line: string): string {
  const plain = stripVTControlCharacters(line).trimEnd();
  return plain.length > LINE_CHARS_MAX ? `${plain.slice(0, LINE_CHARS_MAX - 1)}…` : plain;
}

const omitted = (count: number) => `… ${count} line${count === 1 ? "" : "s"} omitted …`;

/**
 * The last `max` non-blank lines a command printed, and the first error line before them, for
 * the message of its failure: `push` each line as it comes, `text()` when it failed.
 */
export function createLineTail(max = TAIL_LINES, maxChars = TAIL_CHARS_MAX) {
  if (!Number.isInteger(max) || max < 1) throw new Error(`a line tail keeps at least one line, not ${max}`);
  /** Each kept line with its number among the non-blank ones, to know what lies between. */
  const tail: { n: number; text: string }[] = [];
  const pinned: { n: number; text: string }[] = [];
  let count = 0;
  return {
    push(line: string) {
      const text = plainLine(line);
      if (text.trim() === "") return;
      const n = count++;
      const last = pinned.at(-1);
      if (pinned.length === 0 ? isErrorLine(text) : pinned.length < PINNED_LINES && last!.n === n - 1) pinned.push({ n, text });
      tail.push({ n, text });
      if (tail.length > max) tail.shift();
    },
    text: () => excerpt(pinned, tail, maxChars),
  };
}

/**
 * The tail, its oldest lines left out until it fits `maxChars`, after the pinned lines that fell
 * out of it, with a line that says how many lines lie between.
 */
function excerpt(pinned: readonly { n: number; text: string }[], tail: readonly { n: number; text: string }[], maxChars: number): string {
  let start = 0;
  const size = (lines: readonly { text: string }[]) => lines.reduce((sum, line) => sum + line.text.length + 1, 0);
  for (;;) {
    const kept = tail.slice(start);
    const lead = pinned.filter((line) => line.n < (kept[0]?.n ?? Infinity));
    const gap = lead.length > 0 && kept.length > 0 ? kept[0]!.n - lead.at(-1)!.n - 1 : 0;
    const lines = [...lead.map((line) => line.text), ...(gap > 0 ? [omitted(gap)] : []), ...kept.map((line) => line.text)];
    if (kept.length <= 1 || size(lead) + size(kept) + 40 <= maxChars) return lines.join("\n");
    start++;
  }
}
