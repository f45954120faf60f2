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
