import type { Command } from "commander";
import type { DnsProvider, ServiceDomain } from "../api-types";
import type { ApiClient } from "../client";
import type { Context } from "../context";
import { CliError, exitCodes } from "../errors";
import { formatAge, keyValues, table } from "../format";
import { resolveService } from "../paths";
import { readSecretFile } from "../secret-input";

/**
 * `slipway domain …`: custom domains of a service (issue 16, part 1). A domain is served once
 * verified (a DNS TXT record or an HTTP token the router serves), then over HTTPS with a
 * certificate from ACME (HTTP-01, or DNS-01 through a DNS provider of the organization) or one
 * uploaded here.
 */

async function findProvider(api: ApiClient, name: string): Promise<DnsProvider> {
  const wanted = name.trim().toLowerCase();
  const provider = (await api.get<DnsProvider[]>("/dns-providers")).find((item) => item.name === wanted);
  if (!provider) throw new CliError(`no DNS provider named ${wanted} (slipway domain provider list)`, exitCodes.notFound);
  return provider;
}

/** `--challenge http-01|dns-01 [--dns-provider name]` as the API takes it. */
async function challengeOption(api: ApiClient, challenge: string, providerName: string | undefined) {
  const type = { "http-01": "HTTP_01", "dns-01": "DNS_01" }[challenge.toLowerCase()];
  if (!type) throw new CliError(`the challenge is http-01 or dns-01, not "${challenge}"`, exitCodes.usage);
  if (type === "DNS_01" && !providerName) throw new CliError("dns-01 needs --dns-provider <name> (slipway domain provider list)", exitCodes.usage);
  if (type === "HTTP_01" && providerName) throw new CliError("--dns-provider goes with dns-01", exitCodes.usage);
  return { challenge: type, ...(providerName ? { dnsProviderId: (await findProvider(api, providerName)).id } : {}) };
}

async function findDomain(api: ApiClient, servicePath: string, hostname: string): Promise<ServiceDomain> {
  const { serviceId } = await resolveService(api, servicePath);
  const wanted = hostname.trim().toLowerCase().replace(/\.$/, "");
  const domain = (await api.get<ServiceDomain[]>(`/services/${serviceId}/domains`)).find((item) => item.hostname === wanted);
  if (!domain) throw new CliError(`${servicePath} has no domain ${wanted} (slipway domain list ${servicePath})`, exitCodes.notFound);
  return domain;
}

/** What the owner does next: publish the record or point the name at the router; or where the certificate stands. */
export function describeDomain(domain: ServiceDomain): string {
  const lines: [string, string | null][] = [
    ["domain", domain.hostname],
    ["verified", domain.verified ? `yes (${formatAge(domain.verifiedAt)})` : "no"],
  ];
  if (domain.refused) lines.push(["refused", domain.refused]);
  if (!domain.verified) {
    if (domain.txtRecord) lines.push(["publish TXT", `${domain.txtRecord.name}  "${domain.txtRecord.value}"`]);
    if (domain.httpToken) lines.push(["point DNS", `${domain.hostname} at this cluster's router: Slipway fetches ${domain.httpToken.url}`]);
    if (domain.checkError) lines.push(["last check", domain.checkError]);
  }
  lines.push([
    "certificate",
    `${domain.certificate.status.toLowerCase().replace("_", " ")}${domain.certificate.source ? ` (${domain.certificate.source.toLowerCase()})` : ""}`,
  ]);
  lines.push(["challenge", domain.challenge.type === "DNS_01" ? "dns-01 (through a DNS provider)" : "http-01"]);
  if (domain.certificate.notAfter) lines.push(["expires", domain.certificate.notAfter]);
  if (domain.certificate.error) lines.push(["certificate error", domain.certificate.error]);
  lines.push(["HTTP to HTTPS", domain.redirectHttps ? "redirected" : "not redirected"]);
  return keyValues(lines);
}

export function registerDomainCommands(program: Command, ctx: Context): void {
  const domain = program
    .command("domain")
    .description("Custom domains of a service, verified before they are served, with automatic TLS")
    .addHelpText("after", "\nExample: slipway domain add shop/prod/web www.example.com --method dns");

  domain
    .command("add")
    .description("Add a domain; prints what to publish to verify it")
    .argument("<project/env/service>")
    .argument("<domain>")
    .option("--method <method>", "dns: a TXT record proves it; http: the router serves a token Slipway fetches", "dns")
    .option("--challenge <type>", "how ACME checks it: http-01 (through the router) or dns-01 (through --dns-provider)", "http-01")
    .option("--dns-provider <name>", "with dns-01: the DNS provider that publishes its TXT record")
    .option("--json", "print the API object")
    .action(async (servicePath: string, hostname: string, options: { method: string; challenge: string; dnsProvider?: string; json?: boolean }) => {
      const method = { dns: "DNS_TXT", http: "HTTP_TOKEN" }[options.method.toLowerCase()];
      if (!method) throw new CliError(`--method is dns or http, not "${options.method}"`, exitCodes.usage);
      const api = await ctx.api();
      const challenge = await challengeOption(api, options.challenge, options.dnsProvider);
      const { serviceId } = await resolveService(api, servicePath);
      const added = await api.post<ServiceDomain>(`/services/${serviceId}/domains`, { hostname, method, ...challenge });
      if (options.json) return ctx.printJson(added);
      ctx.print(`${describeDomain(added)}\n\nThen run: slipway domain verify ${servicePath} ${added.hostname}`);
    });

  domain
    .command("list")
    .description("A service's domains with their verification and certificate")
    .argument("<project/env/service>")
    .option("--json", "print the API objects")
    .action(async (servicePath: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, servicePath);
      const domains = await api.get<ServiceDomain[]>(`/services/${serviceId}/domains`);
      if (options.json) return ctx.printJson(domains);
      if (domains.length === 0) return ctx.print(`No custom domains on ${servicePath} (slipway domain add ${servicePath} <domain>)`);
      ctx.print(
        table(domains, [
          { header: "DOMAIN", value: (row) => row.hostname },
          { header: "METHOD", value: (row) => (row.method === "DNS_TXT" ? "dns" : "http") },
          { header: "VERIFIED", value: (row) => (row.verified ? "yes" : "no") },
          { header: "CERTIFICATE", value: (row) => row.certificate.status.toLowerCase().replace("_", " ") },
          { header: "CHALLENGE", value: (row) => (row.challenge.type === "DNS_01" ? "dns-01" : "http-01") },
          { header: "EXPIRES", value: (row) => row.certificate.notAfter?.slice(0, 10) },
          { header: "PROBLEM", value: (row) => row.certificate.error ?? (row.verified ? null : row.checkError) },
        ]),
      );
    });

  domain
    .command("verify")
    .description("Check the domain's TXT record or HTTP token now; exits 1 while it does not verify")
    .argument("<project/env/service>")
    .argument("<domain>")
    .option("--json", "print the API object")
    .action(async (servicePath: string, hostname: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const found = await findDomain(api, servicePath, hostname);
      const checked = await api.post<ServiceDomain>(`/domains/${found.id}/verify`, {});
      if (options.json) ctx.printJson(checked);
      else ctx.print(describeDomain(checked));
      if (!checked.verified) throw new CliError(`${checked.hostname} is not verified: ${checked.checkError ?? "see above"}`, exitCodes.failure);
    });

  domain
    .command("challenge")
    .description("Change how ACME checks a domain: http-01 (the router answers the CA) or dns-01 (a TXT record through a DNS provider)")
    .argument("<project/env/service>")
    .argument("<domain>")
    .argument("<type>", "http-01 or dns-01")
    .option("--dns-provider <name>", "with dns-01: the DNS provider that publishes its TXT record")
    .option("--json", "print the API object")
    .action(async (servicePath: string, hostname: string, type: string, options: { dnsProvider?: string; json?: boolean }) => {
      const api = await ctx.api();
      const challenge = await challengeOption(api, type, options.dnsProvider);
      const found = await findDomain(api, servicePath, hostname);
      const saved = await api.patch<ServiceDomain>(`/domains/${found.id}`, challenge);
      if (options.json) return ctx.printJson(saved);
      ctx.print(describeDomain(saved));
    });

  domain
    .command("remove")
    .description("Remove a domain: the router stops serving it")
    .argument("<project/env/service>")
    .argument("<domain>")
    .action(async (servicePath: string, hostname: string) => {
      const api = await ctx.api();
      const found = await findDomain(api, servicePath, hostname);
      await api.delete(`/domains/${found.id}`);
      ctx.print(`Removed ${found.hostname} from ${servicePath}`);
    });

  domain
    .command("certificate")
    .description("Use your own certificate (PEM, chain after the leaf) and private key instead of ACME; --renew obtains one by ACME now")
    .argument("<project/env/service>")
    .argument("<domain>")
    .option("--cert <file>", "the certificate chain, PEM")
    .option("--key <file>", "its private key, PEM (- reads standard input)")
    .option("--renew", "obtain a new certificate by ACME now (replaces an uploaded one)")
    .option("--json", "print the API object")
    .action(async (servicePath: string, hostname: string, options: { cert?: string; key?: string; renew?: boolean; json?: boolean }) => {
      if (options.renew ? options.cert || options.key : !options.cert || !options.key)
        throw new CliError("give --cert and --key to upload, or --renew alone", exitCodes.usage);
      const api = await ctx.api();
      const found = await findDomain(api, servicePath, hostname);
      const saved = options.renew
        ? await api.post<ServiceDomain>(`/domains/${found.id}/certificate/renew`, {})
        : await api.put<ServiceDomain>(`/domains/${found.id}/certificate`, {
            certificatePem: await readSecretFile(ctx, options.cert!, "the certificate"),
            privateKeyPem: await readSecretFile(ctx, options.key!, "the private key"),
          });
      if (options.json) return ctx.printJson(saved);
      ctx.print(
        options.renew ? `Requested a new certificate for ${saved.hostname}; slipway domain list ${servicePath} shows when it is active` : describeDomain(saved),
      );
    });

  registerProviderCommands(domain, ctx);
}

/** Prints a provider without its token (the API never returns it). */
function describeProvider(provider: DnsProvider): string {
  return keyValues([
    ["provider", provider.name],
    ["kind", provider.kind.toLowerCase()],
    ["zone", provider.zone],
    ["API", provider.settings.apiUrl],
    ["nameserver", provider.settings.nameserver ?? "the API's host, port 53"],
    ["token", provider.tokenHint],
  ]);
}

/** `slipway domain provider …`: the organization's DNS providers for DNS-01 (admins). */
function registerProviderCommands(domain: Command, ctx: Context): void {
  const provider = domain
    .command("provider")
    .description("DNS providers: API tokens that publish ACME DNS-01 records (PowerDNS), checked then sealed, never shown again")
    .addHelpText(
      "after",
      '\nExample: printf %s "$PDNS_API_KEY" | slipway domain provider add main --zone example.com --powerdns-url http://ns1.example.com:8081 --token-file -',
    );

  const settingsOf = (options: { powerdnsUrl: string; serverId?: string; nameserver?: string }) => ({
    kind: "POWERDNS",
    apiUrl: options.powerdnsUrl,
    ...(options.serverId ? { serverId: options.serverId } : {}),
    ...(options.nameserver ? { nameserver: options.nameserver } : {}),
  });

  provider
    .command("add")
    .description("Add a DNS provider: the token is checked against the zone before it is saved")
    .argument("<name>")
    .requiredOption("--zone <zone>", "the zone the token edits (example.com): its domains may use this provider")
    .requiredOption("--powerdns-url <url>", "PowerDNS Authoritative's API (its webserver), e.g. http://ns1.example.com:8081")
    .option("--server-id <id>", "PowerDNS's server id", "localhost")
    .option("--nameserver <address>", "where the zone's records are checked (IP[:port]); the API's host on port 53 by default")
    .requiredOption("--token-file <file>", "the API key (X-API-Key), from a file; - reads standard input")
    .option("--json", "print the API object")
    .action(async (name: string, options: { zone: string; powerdnsUrl: string; serverId: string; nameserver?: string; tokenFile: string; json?: boolean }) => {
      const token = (await readSecretFile(ctx, options.tokenFile, "the API token")).trim();
      const api = await ctx.api();
      const saved = await api.post<DnsProvider>("/dns-providers", { name, zone: options.zone, settings: settingsOf(options), token });
      if (options.json) return ctx.printJson(saved);
      ctx.print(`${describeProvider(saved)}\n\nUse it: slipway domain challenge <project/env/service> <domain> dns-01 --dns-provider ${saved.name}`);
    });

  provider
    .command("list")
    .description("The organization's DNS providers (tokens are never shown)")
    .option("--json", "print the API objects")
    .action(async (options: { json?: boolean }) => {
      const api = await ctx.api();
      const providers = await api.get<DnsProvider[]>("/dns-providers");
      if (options.json) return ctx.printJson(providers);
      if (providers.length === 0) return ctx.print("No DNS providers (slipway domain provider add <name> --zone … --powerdns-url … --token-file -)");
      ctx.print(
        table(providers, [
          { header: "NAME", value: (row) => row.name },
          { header: "KIND", value: (row) => row.kind.toLowerCase() },
          { header: "ZONE", value: (row) => row.zone },
          { header: "API", value: (row) => row.settings.apiUrl },
          { header: "TOKEN", value: (row) => row.tokenHint },
        ]),
      );
    });

  provider
    .command("update")
    .description("Replace a provider's token (rotated at the provider), zone or API settings; checked before saving")
    .argument("<name>")
    .option("--zone <zone>", "another zone")
    .option("--powerdns-url <url>", "PowerDNS's API")
    .option("--server-id <id>", "PowerDNS's server id")
    .option("--nameserver <address>", "where the zone's records are checked (IP[:port])")
    .option("--token-file <file>", "a new API key, from a file; - reads standard input")
    .option("--json", "print the API object")
    .action(
      async (name: string, options: { zone?: string; powerdnsUrl?: string; serverId?: string; nameserver?: string; tokenFile?: string; json?: boolean }) => {
        const api = await ctx.api();
        const found = await findProvider(api, name);
        const settingsChanged = options.powerdnsUrl || options.serverId || options.nameserver;
        if (!options.zone && !settingsChanged && !options.tokenFile)
          throw new CliError("nothing to change: give --token-file, --zone, --powerdns-url, --server-id or --nameserver", exitCodes.usage);
        const token = options.tokenFile ? (await readSecretFile(ctx, options.tokenFile, "the API token")).trim() : undefined;
        const saved = await api.patch<DnsProvider>(`/dns-providers/${found.id}`, {
          ...(options.zone ? { zone: options.zone } : {}),
          ...(settingsChanged
            ? {
                settings: settingsOf({
                  powerdnsUrl: options.powerdnsUrl ?? found.settings.apiUrl,
                  serverId: options.serverId ?? found.settings.serverId,
                  nameserver: options.nameserver ?? found.settings.nameserver,
                }),
              }
            : {}),
          ...(token ? { token } : {}),
        });
        if (options.json) return ctx.printJson(saved);
        ctx.print(describeProvider(saved));
      },
    );

  provider
    .command("remove")
    .description("Remove a DNS provider no domain uses")
    .argument("<name>")
    .action(async (name: string) => {
      const api = await ctx.api();
      const found = await findProvider(api, name);
      await api.delete(`/dns-providers/${found.id}`);
      ctx.print(`Removed the DNS provider ${found.name}`);
    });
}
