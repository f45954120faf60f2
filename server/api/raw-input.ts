/**
 * What every API input is held to before its schema sees it, whatever the procedure and the
 * transport (tRPC, REST, a server-side caller): issue 13, part 6.
 *
 * - No NUL character: PostgreSQL cannot store one in text or jsonb, so it would fail the request
 *   with a 500 at the first write, or at a lookup by name.
 * - No lone surrogate (half of a UTF-16 pair): it has no UTF-8 encoding, so it would be stored
 *   as U+FFFD, a silent change of what the client sent.
 * - No nesting deeper than MAX_INPUT_DEPTH: no input of the API comes near it, and code that
 *   recurses over a value (JSON.stringify, a log line, a structured clone) overflows the stack
 *   on one thousands of levels deep.
 *
 * Keys are strings too, and are checked like values.
 */
export const MAX_INPUT_DEPTH = 32;

export type InputProblem = { path: (string | number)[]; message: string };

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function stringProblem(text: string): string | null {
  if (text.includes("\u0000")) return "must not contain a NUL character (\\u0000)";
  if (LONE_SURROGATE.test(text)) return "must not contain a lone surrogate (\\uD800-\\uDFFF): it is not valid Unicode";
  return null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** The first problem found in `value`, with the path to it; null when there is none. */
export function findInputProblem(value: unknown, maxDepth = MAX_INPUT_DEPTH): InputProblem | null {
  // Iterative, depth first: a value nested deeper than the call stack must not overflow it here.
  const pending: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }];
  while (pending.length > 0) {
    const { value: current, path } = pending.pop()!;
    if (typeof current === "string") {
      const message = stringProblem(current);
      if (message) return { path, message };
      continue;
    }
    const children: [string | number, unknown][] = Array.isArray(current)
      ? current.map((item, index) => [index, item])
      : isPlainObject(current)
        ? Object.entries(current)
        : [];
    if (children.length > 0 && path.length >= maxDepth) return { path, message: `is nested deeper than ${maxDepth} levels` };
    for (const [key, child] of children.reverse()) {
      if (typeof key === "string") {
        const message = stringProblem(key);
        if (message) return { path, message: `has a key that ${message}` };
      }
      pending.push({ value: child, path: [...path, key] });
    }
  }
  return null;
}
