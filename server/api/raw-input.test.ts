import { describe, expect, it } from "vitest";
import { findInputProblem, MAX_INPUT_DEPTH } from "./raw-input";

const nested = (levels: number): unknown => (levels === 0 ? "leaf" : { next: nested(levels - 1) });

describe("findInputProblem", () => {
  it("accepts any well-formed text, pairs of surrogates (emoji) included", () => {
    expect(findInputProblem({ name: "café 😀 \t\n\u007f", list: ["a", 1, true, null], "ключ 🔑": {} })).toBeNull();
  });

  it("names the path to a NUL or a lone surrogate, in a value or a key", () => {
    expect(findInputProblem({ a: [{ b: "x\u0000" }] })).toEqual({ path: ["a", 0, "b"], message: "must not contain a NUL character (\\u0000)" });
    expect(findInputProblem({ a: "end\ud800" })?.path).toEqual(["a"]);
    expect(findInputProblem({ a: "\udc00start" })?.path).toEqual(["a"]);
    expect(findInputProblem({ a: "\udc00\ud800" })?.message).toMatch(/lone surrogate/);
    expect(findInputProblem("\u0000")).toMatchObject({ path: [] });
    expect(findInputProblem({ a: { "k\u0000": 1 } })).toEqual({ path: ["a"], message: "has a key that must not contain a NUL character (\\u0000)" });
  });

  it(`accepts ${MAX_INPUT_DEPTH} levels of nesting and refuses one more, without recursing`, () => {
    expect(findInputProblem(nested(MAX_INPUT_DEPTH))).toBeNull();
    expect(findInputProblem(nested(MAX_INPUT_DEPTH + 1))?.message).toBe(`is nested deeper than ${MAX_INPUT_DEPTH} levels`);
    // Deeper than the call stack: a recursive walk would throw RangeError.
    expect(findInputProblem(JSON.parse("[".repeat(200_000) + "]".repeat(200_000)))?.path).toHaveLength(MAX_INPUT_DEPTH);
  });
});
