import { describe, expect, it } from "vitest";
import { generatePassword, hashPassword, verifyPassword } from "./passwords";

describe("passwords", () => {
  it("verifies the password a hash was made from, and no other", async () => {
    const hash = await hashPassword("correct horse battery staple");
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(await verifyPassword("correct horse battery staple", hash)).toBe(true);
    expect(await verifyPassword("correct horse battery stapler", hash)).toBe(false);
  });

  it("salts every hash", async () => {
    expect(await hashPassword("same")).not.toBe(await hashPassword("same"));
  });

  it("treats equivalent Unicode spellings as the same password", async () => {
    const hash = await hashPassword("caf\u00e9");
    expect(await verifyPassword("cafe\u0301", hash)).toBe(true);
  });

  it("refuses malformed or truncated hashes instead of accepting any password", async () => {
    await expect(verifyPassword("x", "scrypt$32768$8$1$c2FsdA$")).rejects.toThrow(/unknown format/);
    await expect(verifyPassword("x", "bcrypt$10$abc")).rejects.toThrow(/unknown format/);
    await expect(verifyPassword("x", "scrypt$1099511627776$8$1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA")).rejects.toThrow(/unknown format/);
  });

  it("generates distinct passwords of 24 URL-safe characters", () => {
    const password = generatePassword();
    expect(password).toMatch(/^[\w-]{24}$/);
    expect(generatePassword()).not.toBe(password);
  });
});
