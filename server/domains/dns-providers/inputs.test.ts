import { describe, expect, it } from "vitest";
import { powerDnsSettings } from "./inputs";

/** What a user types for PowerDNS becomes what the worker dials, or a sentence saying what to give. */
describe("PowerDNS settings", () => {
  const parse = (fields: Record<string, string>) => powerDnsSettings.safeParse({ apiUrl: "http://ns1.example.com:8081", ...fields });

  it("takes the API's base URL, with or without /api/v1", () => {
    expect(parse({ apiUrl: "http://ns1.example.com:8081/api/v1/" }).data?.apiUrl).toBe("http://ns1.example.com:8081");
    expect(parse({}).data).toEqual({ apiUrl: "http://ns1.example.com:8081", serverId: "localhost" });
    expect(parse({ apiUrl: "ftp://ns1.example.com" }).error?.issues[0]?.message).toBe("the API's URL starts with http:// or https://");
  });

  it("reads the nameserver as an address Node's resolver asks, port 53 by default", () => {
    expect(parse({ nameserver: "192.0.2.1" }).data?.nameserver).toBe("192.0.2.1:53");
    expect(parse({ nameserver: "127.0.0.1:5353" }).data?.nameserver).toBe("127.0.0.1:5353");
    expect(parse({ nameserver: "2001:db8::1" }).data?.nameserver).toBe("[2001:db8::1]:53");
    expect(parse({ nameserver: "[2001:db8::1]:5300" }).data?.nameserver).toBe("[2001:db8::1]:5300");
    for (const wrong of ["ns1.example.com", "192.0.2.1:0", "192.0.2.1:70000", "300.1.1.1"])
      expect(parse({ nameserver: wrong }).error?.issues[0]?.message, wrong).toMatch(/^give the nameserver as an IP address/);
  });
});
