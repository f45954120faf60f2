import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultDomainSettings } from "../server/domains/settings";
import { pebbleMissing, startPebble, type Pebble } from "../test/support/pebble";
import { powerDnsMissing, startPowerDns, type PowerDns } from "../test/support/powerdns";
import { skipWithout } from "../test/support/requirements";
import { selfSignedCertificate } from "../test/support/self-signed";
import { startCliHarness, type CliHarness } from "./test-harness";

/**
 * `slipway domain …` (issue 16, part 1) against a real control plane; DNS answers come from
 * pebble-challtestsrv's mock DNS server on 127.0.0.1 (the Debian package `pebble`).
 */
const missing = await pebbleMissing();
const withoutPowerDns = missing !== null || skipWithout(await powerDnsMissing());
const PDNS_KEY = "cli-pdns-key-0123456789abcdef";
let h: CliHarness;
let pebble: Pebble;
let pdns: PowerDns | undefined;
let dir: string;

/** A self-signed certificate and its key for `hostname`, as files for the CLI's flags. */
const selfSigned = (hostname: string) => selfSignedCertificate({ dir, names: [hostname], days: 30 });

beforeAll(async () => {
  if (missing) return;
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-cli-domains-"));
  pebble = await startPebble({ httpPort: 1 });
  if (!withoutPowerDns) pdns = await startPowerDns({ zone: "example.test", apiKey: PDNS_KEY });
  h = await startCliHarness({ domains: { ...defaultDomainSettings, dnsServers: [pebble.dnsServer], checkTimeoutMs: 3_000 } });
  expect((await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).code).toBe(0);
  expect((await h.cli(["project", "create", "shop"])).code).toBe(0);
  expect((await h.cli(["env", "create", "shop/prod"])).code).toBe(0);
  expect((await h.cli(["service", "create", "shop/prod/web", "--git", "https://example.test/shop.git"])).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await pebble?.stop();
  await pdns?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(missing)("slipway domain", () => {
  it("adds a domain, says what to publish, verifies it once the TXT record exists", async () => {
    const added = await h.cli(["domain", "add", "shop/prod/web", "WWW.Example.test"]);
    expect(added.code).toBe(0);
    const record = /publish TXT\s+(\S+)\s+"(slipway-verification=[^"]+)"/.exec(added.stdout);
    expect(record?.[1]).toBe("_slipway-verification.www.example.test");
    expect(added.stdout).toContain("slipway domain verify shop/prod/web www.example.test");

    const early = await h.cli(["domain", "verify", "shop/prod/web", "www.example.test"]);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/error: www\.example\.test is not verified: .*_slipway-verification\.www\.example\.test/);

    await pebble.setTxt(record![1]!, record![2]!);
    const verified = await h.cli(["domain", "verify", "shop/prod/web", "www.example.test"]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/verified\s+yes/);

    const listed = await h.cli(["domain", "list", "shop/prod/web"]);
    expect(listed.stdout).toMatch(/www\.example\.test\s+dns\s+yes\s+issuing/);
  });

  it("uploads the user's own certificate, refusing one for another name", async () => {
    const other = await selfSigned("other.example.test");
    const refused = await h.cli(["domain", "certificate", "shop/prod/web", "www.example.test", "--cert", other.certPath, "--key", other.keyPath]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("not www.example.test");

    const own = await selfSigned("www.example.test");
    const uploaded = await h.cli(["domain", "certificate", "shop/prod/web", "www.example.test", "--cert", own.certPath, "--key", own.keyPath, "--json"]);
    expect(uploaded.code).toBe(0);
    const domain = JSON.parse(uploaded.stdout) as { certificate: { status: string; source: string } };
    expect(domain.certificate).toMatchObject({ status: "ACTIVE", source: "UPLOADED" });
    expect(uploaded.stdout).not.toContain("PRIVATE KEY");
  });

  it("refuses what is not a domain and removes one", async () => {
    const bad = await h.cli(["domain", "add", "shop/prod/web", "https://example.test/path"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("give a domain name");
    expect((await h.cli(["domain", "add", "shop/prod/web", "api.localhost"])).stderr).toContain("localhost names are Slipway's generated domains");
    const removed = await h.cli(["domain", "remove", "shop/prod/web", "www.example.test"]);
    expect(removed.code).toBe(0);
    expect((await h.cli(["domain", "list", "shop/prod/web"])).stdout).toContain("No custom domains on shop/prod/web");
  });
});

describe.skipIf(withoutPowerDns)("slipway domain provider", () => {
  it("adds a PowerDNS provider from standard input, refusing a wrong key, and never shows the token", async () => {
    const args = [
      "domain",
      "provider",
      "add",
      "main",
      "--zone",
      "example.test",
      "--powerdns-url",
      pdns!.apiUrl,
      "--nameserver",
      pdns!.dnsServer,
      "--token-file",
      "-",
    ];
    const refused = await h.cli(args, { stdin: "wrong-key\n" });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the token was not saved: PowerDNS at .* refused the API key \(401\)/);
    expect((await h.cli(["domain", "provider", "list"])).stdout).toContain("No DNS providers");

    const added = await h.cli(args, { stdin: `${PDNS_KEY}\n` });
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/token\s+…cdef/);
    const listed = await h.cli(["domain", "provider", "list"]);
    expect(listed.stdout).toMatch(/main\s+powerdns\s+example\.test\s+http:\/\/127\.0\.0\.1:\d+\s+…cdef/);
    expect(listed.stdout + (await h.cli(["domain", "provider", "list", "--json"])).stdout).not.toContain(PDNS_KEY);
  });

  it("sets a domain's challenge to dns-01 through the provider and back, and keeps a provider in use", async () => {
    const added = await h.cli(["domain", "add", "shop/prod/web", "api.example.test", "--challenge", "dns-01", "--dns-provider", "main"]);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/challenge\s+dns-01 \(through a DNS provider\)/);
    expect((await h.cli(["domain", "list", "shop/prod/web"])).stdout).toMatch(/api\.example\.test\s+dns\s+no\s+awaiting verification\s+dns-01/);
    const outside = await h.cli(["domain", "add", "shop/prod/web", "api.other.test", "--challenge", "dns-01", "--dns-provider", "main"]);
    expect(outside.stderr).toContain("api.other.test is not in the zone example.test of the DNS provider main");

    const inUse = await h.cli(["domain", "provider", "remove", "main"]);
    expect(inUse.code).not.toBe(0);
    expect(inUse.stderr).toContain("main issues the certificates of api.example.test");
    const back = await h.cli(["domain", "challenge", "shop/prod/web", "api.example.test", "http-01"]);
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(/challenge\s+http-01/);
    expect((await h.cli(["domain", "provider", "remove", "main"])).stdout).toBe("Removed the DNS provider main\n");
  });
});
