import dns from "node:dns";
import http from "node:http";
import { VERIFICATION_PREFIX } from "../../engine/protocol/edge";
import type { DomainVerificationMethod } from "../db/schema";
import type { DomainSettings } from "./settings";

/** The TXT record that proves a domain by DNS: its name and expected value. */
export function txtRecordOf(hostname: string, token: string) {
  return { name: `_slipway-verification.${hostname}`, value: `slipway-verification=${token}` };
}

/** The URL the router answers with the token, for the HTTP method. */
export function verificationUrlOf(hostname: string, token: string) {
  return `http://${hostname}${VERIFICATION_PREFIX}${token}`;
}

function resolverOf(settings: DomainSettings) {
  const resolver = new dns.promises.Resolver({ timeout: Math.min(settings.checkTimeoutMs, 5_000), tries: 2 });
  if (settings.dnsServers) resolver.setServers(settings.dnsServers);
  return resolver;
}

const BODY_LIMIT = 4096;

/**
 * GETs a path of a domain over plain HTTP on the checks' port, with the domain's address from
 * the checks' resolver: bounded in time and size, no redirect followed.
 */
export async function fetchFromDomain(settings: DomainSettings, hostname: string, urlPath: string): Promise<{ status: number; body: string }> {
  let addresses: string[];
  try {
    addresses = await resolverOf(settings).resolve4(hostname);
  } catch (error) {
    throw new Error(`${hostname} has no IPv4 address (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const address = addresses[0]!;
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port: settings.httpPort, path: urlPath, headers: { host: hostname }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
        if (body.length > BODY_LIMIT) req.destroy(new Error(`the answer of http://${hostname}${urlPath} is longer than ${BODY_LIMIT} bytes`));
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.setTimeout(settings.checkTimeoutMs, () =>
      req.destroy(new Error(`http://${hostname}${urlPath} did not answer within ${settings.checkTimeoutMs / 1000} s`)),
    );
    req.on("error", (error: NodeJS.ErrnoException) =>
      reject(new Error(`http://${hostname}${urlPath} (${address}:${settings.httpPort}) cannot be reached: ${error.code ?? error.message}`)),
    );
  });
}

/** Whether a domain proves its owner: null when it does, else why not, in a sentence the page shows. */
export async function checkOwnership(
  settings: DomainSettings,
  domain: { hostname: string; verificationMethod: DomainVerificationMethod; verificationToken: string },
): Promise<string | null> {
  const { hostname, verificationToken: token } = domain;
  if (domain.verificationMethod === "DNS_TXT") {
    const record = txtRecordOf(hostname, token);
    let values: string[];
    try {
      values = (await resolverOf(settings).resolveTxt(record.name)).map((chunks) => chunks.join(""));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === dns.NODATA || code === dns.NOTFOUND) return `no TXT record at ${record.name} yet`;
      return `the TXT record at ${record.name} could not be read (${code ?? (error as Error).message})`;
    }
    if (values.includes(record.value)) return null;
    return `the TXT records at ${record.name} do not include ${record.value} (found ${values.length === 0 ? "none" : values.map((v) => JSON.stringify(v)).join(", ")})`;
  }
  const url = verificationUrlOf(hostname, token);
  try {
    const answer = await fetchFromDomain(settings, hostname, new URL(url).pathname);
    if (answer.status === 200 && answer.body.trim() === token) return null;
    return `${url} answered ${answer.status} without the token: point ${hostname} at this cluster's router`;
  } catch (error) {
    return (error as Error).message;
  }
}
