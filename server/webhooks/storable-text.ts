/**
 * PostgreSQL cannot hold a NUL character in text (22021) or jsonb (22P05), nor an unpaired
 * UTF-16 surrogate in jsonb (22P02); JSON can carry both as escapes (`\u0000`, `\ud800`). No git
 * ref, file name or commit message contains either, so a delivery that does is refused at the
 * intake: stored, its repository would fail the insert of every delivery batched with it, and its
 * ref the worker's write of its outcome.
 */

/** The escapes that can decode to such a character; the body is walked only when it has one. */
const SUSPECT_ESCAPE = /\\u(?:0000|d[89a-f])/i;

export const UNSTORABLE_TEXT =
  "The payload contains a NUL character or an unpaired surrogate (\\u0000, \\ud800-\\udfff), which no git ref, path or message holds";

/** A surrogate that is not half of a pair (with the u flag, a pair reads as one code point). */
const UNPAIRED_SURROGATE = /\p{Cs}/u;
const unstorable = (text: string) => text.includes("\u0000") || UNPAIRED_SURROGATE.test(text);

/**
 * Whether `payload`, parsed from the JSON `body`, holds a string PostgreSQL cannot store. The body
 * is searched first: most deliveries have no such escape (a `\\u0000` written in a commit
 * message is a backslash, not a NUL, and is walked and accepted). Walked without recursion, so
 * no nesting depth makes it throw.
 */
export function hasUnstorableText(body: string, payload: unknown): boolean {
  if (!SUSPECT_ESCAPE.test(body)) return false;
  const stack: unknown[] = [payload];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === "string") {
      if (unstorable(value)) return true;
    } else if (value !== null && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) {
        if (unstorable(key)) return true;
        stack.push(inner);
      }
    }
  }
  return false;
}
