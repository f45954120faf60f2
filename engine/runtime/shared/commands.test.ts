import os from "node:os";
import { describe, expect, it } from "vitest";
import { LINE_PIECE_MAX, runCommand } from "./commands";

/** Runs a Node script as a build step would run its command, and collects what it printed, line by line. */
async function printed(script: string) {
  const lines: { fd: "stdout" | "stderr"; line: string }[] = [];
  const result = await runCommand({
    argv: [process.execPath, "-e", script],
    cwd: os.tmpdir(),
    env: {},
    timeoutMs: 20_000,
    onLine: (fd, line) => lines.push({ fd, line }),
  });
  const of = (fd: "stdout" | "stderr") => lines.filter((line) => line.fd === fd).map((line) => line.line);
  return { code: result.code, stdout: of("stdout"), stderr: of("stderr") };
}

describe("a command's output, as the build log shows it", () => {
  it("comes line by line, without line endings, the last line even without its newline", async () => {
    const output = await printed(`
      process.stdout.write("installing\\nbuilt in 2s\\r\\n\\n");
      process.stderr.write("warning: deprecated\\n");
      setTimeout(() => process.stdout.write("done, no newline"), 50);
    `);
    expect(output).toEqual({ code: 0, stdout: ["installing", "built in 2s", "", "done, no newline"], stderr: ["warning: deprecated"] });
  });

  it("keeps a character whose bytes arrive in two writes whole", async () => {
    const output = await printed(`
      const bytes = Buffer.from("café ✓\\n");
      process.stdout.write(bytes.subarray(0, 4));
      setTimeout(() => process.stdout.write(bytes.subarray(4)), 50);
    `);
    expect(output.stdout).toEqual(["café ✓"]);
  });

  // Kept whole, such a line grew until V8 refused the string, and the engine ended.
  it("comes in pieces when a line never ends, and all of it arrives", async () => {
    const output = await printed(`process.stdout.write("x".repeat(5_000_000))`);
    expect(output.code).toBe(0);
    expect(output.stdout.length).toBeGreaterThan(1);
    expect(output.stdout.every((piece) => piece.length <= LINE_PIECE_MAX)).toBe(true);
    expect(output.stdout.join("")).toBe("x".repeat(5_000_000));
  });

  it("cuts a progress bar redrawn with \\r at a redraw, never inside one", async () => {
    const output = await printed(`
      for (let percent = 0; percent < 100_000; percent++) process.stdout.write("\\rdownloading " + percent + "/100000");
      process.stdout.write("\\n");
    `);
    expect(output.stdout.length).toBeGreaterThan(1);
    expect(output.stdout.slice(1).every((piece) => piece.startsWith("\rdownloading "))).toBe(true);
    expect(output.stdout.every((piece) => piece.length <= LINE_PIECE_MAX)).toBe(true);
    expect(output.stdout.join("")).toMatch(/^(\rdownloading \d+\/100000){100000}$/);
  });
});
