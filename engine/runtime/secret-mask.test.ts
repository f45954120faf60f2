import { describe, expect, it } from "vitest";
import { loadingMasker, secretMasker, withheldLine } from "./secret-mask";

const secret = (key: string, value: string) => ({ key, value, secret: true });
const plain = (key: string, value: string) => ({ key, value, secret: false });

describe("secretMasker", () => {
  it("masks every occurrence of every secret value, and nothing else", () => {
    const mask = secretMasker([secret("TOKEN", "tok-123"), plain("GREETING", "hello"), secret("PASSWORD", "hunter2")]);
    expect(mask("hello tok-123 and hunter2, again tok-123")).toBe("hello **** and ****, again ****");
  });

  it("masks a secret that contains another one whole", () => {
    const mask = secretMasker([secret("SHORT", "abc"), secret("LONG", "xxabcxx")]);
    expect(mask("value=xxabcxx, part=abc")).toBe("value=****, part=****");
  });

  it("leaves lines as they are when there is no secret, or only empty ones", () => {
    expect(secretMasker([plain("A", "abc"), secret("EMPTY", "")])("abc")).toBe("abc");
  });
});

describe("loadingMasker", () => {
  it("withholds every line while the secrets cannot be loaded, then masks once they can", () => {
    let readable = false;
    const mask = loadingMasker(() => {
      if (!readable) throw new Error("the release's launch file is unreadable (ENOENT)");
      return [secret("TOKEN", "tok-123")];
    });
    expect(mask("token tok-123")).toBe(withheldLine("the release's launch file is unreadable (ENOENT)"));
    expect(mask("again tok-123")).not.toContain("tok-123");
    readable = true;
    expect(mask("token tok-123")).toBe("token ****");
  });

  it("loads the secrets once", () => {
    let loads = 0;
    const mask = loadingMasker(() => {
      loads++;
      return [secret("TOKEN", "tok-123")];
    });
    mask("a");
    mask("b tok-123");
    expect(loads).toBe(1);
  });
});
