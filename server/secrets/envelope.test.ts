import { describe, expect, it } from "vitest";
import { generateKey, open, seal } from "./envelope";

describe("envelope encryption", () => {
  it("opens what it sealed, under the same key and context only", () => {
    const key = generateKey();
    const sealed = seal(key, "s3cret", "variable:SERVICE:a:KEY");
    expect(sealed).not.toContain("s3cret");
    expect(open(key, sealed, "variable:SERVICE:a:KEY").toString("utf8")).toBe("s3cret");
    expect(() => open(key, sealed, "variable:SERVICE:b:KEY")).toThrow(/cannot be decrypted/);
    expect(() => open(generateKey(), sealed, "variable:SERVICE:a:KEY")).toThrow(/cannot be decrypted/);
  });

  it("gives every sealed value its own IV, also across the refills of its random bytes", () => {
    const key = generateKey();
    // More values than one draw of random bytes serves (256 IVs).
    const sealed = Array.from({ length: 1000 }, () => seal(key, "same value", "same context"));
    const ivs = sealed.map((value) => value.split(".")[1]);
    expect(new Set(ivs).size).toBe(1000);
    expect(new Set(sealed).size).toBe(1000);
    for (const value of sealed) expect(open(key, value, "same context").toString("utf8")).toBe("same value");
  });
});
