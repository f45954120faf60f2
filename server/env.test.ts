import { describe, expect, it } from "vitest";
import { loadEnv } from "./env";

describe("the control plane's configuration", () => {
  it("reads numbers written with digits, and refuses a blank one rather than taking it for 0", () => {
    expect(loadEnv({}).PORT).toBe(3000);
    expect(loadEnv({ PORT: " 8080 ", SLIPWAY_DRAIN_SECONDS: "2.5" })).toMatchObject({ PORT: 8080, SLIPWAY_DRAIN_SECONDS: 2.5 });
    // A blank port listened on a random one, a blank HTTPS port turned HTTPS off, 1e2 was 100.
    for (const [name, value] of [
      ["PORT", ""],
      ["SLIPWAY_ROUTER_HTTPS_PORT", " "],
      ["SLIPWAY_LEASE_SECONDS", "1e2"],
      ["SLIPWAY_DATABASE_POOL_SIZE", "0x10"],
    ]) {
      expect(() => loadEnv({ [name!]: value })).toThrow(`Invalid configuration: ${name}: expected a number written with digits, such as 30 or 2.5`);
    }
    expect(() => loadEnv({ PORT: "70000" })).toThrow(/PORT: Too big/);
  });
});

describe("SLIPWAY_DOMAIN, the local cluster's domain suffix", () => {
  const label = (length: number) => "a".repeat(length);

  it("is a DNS name of labels of at most 63 characters and 189 in all, refused at boot otherwise", () => {
    expect(loadEnv({}).SLIPWAY_DOMAIN).toBe("localhost");
    expect(loadEnv({ SLIPWAY_DOMAIN: ` ${label(63)}.Example.COM. ` }).SLIPWAY_DOMAIN).toBe(`${label(63)}.example.com`);
    // 63 + 1 + 63 + 1 + 61 = 189.
    const longest = `${label(63)}.${label(63)}.${label(61)}`;
    expect(loadEnv({ SLIPWAY_DOMAIN: longest }).SLIPWAY_DOMAIN).toBe(longest);

    expect(() => loadEnv({ SLIPWAY_DOMAIN: `${label(64)}.example.com` })).toThrow(
      `Invalid configuration: SLIPWAY_DOMAIN: use a DNS name: its label ${label(20)}… has 64 characters, and a DNS label may have at most 63`,
    );
    expect(() => loadEnv({ SLIPWAY_DOMAIN: `${longest}b` })).toThrow(
      "Invalid configuration: SLIPWAY_DOMAIN: use at most 189 characters: a hostname, <service>-<env>-<project>.<domainSuffix>, may have 253, and its first label 63",
    );
    for (const name of ["apps_example.com", "apps..example.com", "-apps.example.com", "https://apps.example.com", ""]) {
      expect(() => loadEnv({ SLIPWAY_DOMAIN: name })).toThrow(
        "Invalid configuration: SLIPWAY_DOMAIN: use a DNS name: lowercase letters, digits, hyphens and dots, such as apps.example.com",
      );
    }
  });
});
