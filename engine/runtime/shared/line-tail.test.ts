import { describe, expect, it } from "vitest";
import { createLineTail, isErrorLine } from "./line-tail";

const tailOf = (lines: string[], max?: number, maxChars?: number) => {
  const tail = createLineTail(max, maxChars);
  for (const line of lines) tail.push(line);
  return tail.text();
};

describe("createLineTail", () => {
  it("keeps the last lines, without blank ones or colours", () => {
    expect(tailOf(["one", "", "\u001b[31mtwo\u001b[39m", "three   "], 2)).toBe("two\nthree");
  });

  it("keeps the first error line and the few after it ahead of the last lines, saying how many lie between", () => {
    const stack = Array.from({ length: 30 }, (_, i) => `    at frame${i} (file:///app/node_modules/x.js:${i}:1)`);
    const lines = ["> start", "Error: Cannot find module 'a-missing-module'", "Require stack:", "- /app/app.js", "- /app/bin/www", ...stack];
    expect(tailOf(lines, 5).split("\n")).toEqual([
      "Error: Cannot find module 'a-missing-module'",
      "Require stack:",
      "- /app/app.js",
      "- /app/bin/www",
      "… 25 lines omitted …",
      ...stack.slice(-5),
    ]);
  });

  it("drops the oldest lines of the tail to fit its characters, never the error line", () => {
    const text = tailOf(["error during build:", ...Array.from({ length: 40 }, (_, i) => `${String(i).padStart(2, "0")} ${"x".repeat(97)}`)], 60, 1_000);
    expect(text.length).toBeLessThanOrEqual(1_000);
    expect(text).toMatch(/^error during build:\n00 x+\n01 x+\n02 x+\n… \d+ lines omitted …\n/);
    expect(text).toMatch(/\n39 x+$/);
  });

  it("says nothing omitted when the error line is still in the tail", () => {
    expect(tailOf(["building", "ERROR: No matching distribution found for flask", "done"], 60)).toBe(
      "building\nERROR: No matching distribution found for flask\ndone",
    );
  });

  it("refuses to keep no line", () => {
    expect(() => createLineTail(0)).toThrow("a line tail keeps at least one line, not 0");
  });
});

describe("isErrorLine", () => {
  it("reads the error lines of Node, Python, pip, npm, git and bundlers, not their neighbours", () => {
    for (const line of [
      "Error: Cannot find module 'x'",
      "TypeError: x is not a function",
      "ModuleNotFoundError: No module named 'flask'",
      "error during build:",
      "ERROR: Could not find a version that satisfies the requirement flask",
      "npm ERR! code ELIFECYCLE",
      "fatal: repository not found",
      "[UNRESOLVED_IMPORT] Could not resolve './a.css' in src/main.jsx",
      '✘ [ERROR] Could not resolve "./a"',
      "Traceback (most recent call last):",
    ])
      expect(isErrorLine(line), line).toBe(true);
    for (const line of [
      "    at Module._compile (node:internal/modules/cjs/loader:1706:14)",
      "errors: [Getter/Setter]",
      "ErrorBoundary compiled",
      "no errors found",
      "[vite] ok",
    ])
      expect(isErrorLine(line), line).toBe(false);
  });
});
