import type { Command } from "commander";
import type { ServiceDomain } from "../api-types";
import type { ApiClient } from "../client";
import type { Context } from "../context";
import { CliError, exitCodes } from "../errors";
import { formatAge, keyValues, table } from "../format";
import { resolveService } from "../paths";
import { readSecretFile } from "../secret-input";

/**
 * `slipway domain …`: custom domains of a service (issue 16, part 1). A domain is served once
 * verified (a DNS TXT record or an HTTP token the router serves), then over HTTPS with a
 * certificate from ACME or one uploaded here.
 */

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
  if (!domain.verified) {
    if (domain.txtRecord) lines.push(["publish TXT", `${domain.txtRecord.name}  "${domain.txtRecord.value}"`]);
    if (domain.httpToken) lines.push(["point DNS", `${domain.hostname} at this cluster's router: Slipway fetches ${domain.httpToken.url}`]);
    if (domain.checkError) lines.push(["last check", domain.checkError]);
  }
  lines.push([
    "certificate",
    `${domain.certificate.status.toLowerCase().replace("_", " ")}${domain.certificate.source ? ` (${domain.certificate.source.toLowerCase()})` : ""}`,
  ]);
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
    .option("--json", "print the API object")
    .action(async (servicePath: string, hostname: string, options: { method: string; json?: boolean }) => {
      const method = { dns: "DNS_TXT", http: "HTTP_TOKEN" }[options.method.toLowerCase()];
      if (!method) throw new CliError(`--method is dns or http, not "${options.method}"`, exitCodes.usage);
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, servicePath);
      const added = await api.post<ServiceDomain>(`/services/${serviceId}/domains`, { hostname, method });
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
}
