import tls from "node:tls";
import { ACME_CHALLENGE_PREFIX, type EdgeDomain, type EdgeState, VERIFICATION_PREFIX } from "../protocol/edge";

/**
 * The router's custom domains (issue 16, part 1): which host belongs to which service, the
 * certificates SNI picks from, and the two well-known paths the router answers itself (ACME
 * HTTP-01 challenges and Slipway's HTTP verification token).
 */
export function createEdge() {
  let byHost = new Map<string, EdgeDomain>();
  let contexts = new Map<string, tls.SecureContext>();

  return {
    /** Replaces the table; secure contexts are built here so a bad certificate is refused before it is kept. */
    apply(state: EdgeState) {
      const nextHosts = new Map<string, EdgeDomain>();
      const nextContexts = new Map<string, tls.SecureContext>();
      for (const domain of state.domains) {
        nextHosts.set(domain.hostname, domain);
        if (domain.verified && domain.certificate)
          nextContexts.set(domain.hostname, tls.createSecureContext({ cert: domain.certificate.certPem, key: domain.certificate.keyPem }));
      }
      byHost = nextHosts;
      contexts = nextContexts;
    },
    /** A verified custom domain's service. */
    serviceOf(host: string): string | null {
      const domain = byHost.get(host);
      return domain?.verified ? domain.serviceId : null;
    },
    isCustom(host: string): boolean {
      return byHost.has(host);
    },
    /** Plain HTTP to this host goes to HTTPS: a verified domain with a certificate that asks for it. */
    redirectsToHttps(host: string): boolean {
      const domain = byHost.get(host);
      return Boolean(domain?.verified && domain.redirectHttps && contexts.has(host));
    },
    /** The body the router answers a well-known path with, or null when the path is not one of its own for this host. */
    wellKnown(host: string, urlPath: string): string | null {
      const domain = byHost.get(host);
      if (!domain) return null;
      const pathname = urlPath.split("?")[0]!;
      if (pathname.startsWith(ACME_CHALLENGE_PREFIX) && domain.acmeChallenge?.token === pathname.slice(ACME_CHALLENGE_PREFIX.length))
        return domain.acmeChallenge.keyAuthorization;
      if (pathname.startsWith(VERIFICATION_PREFIX) && domain.verificationToken && domain.verificationToken === pathname.slice(VERIFICATION_PREFIX.length))
        return domain.verificationToken;
      return null;
    },
    /** node:tls's SNICallback: the certificate of the name the client asked for; no certificate, no handshake. */
    sniCallback(servername: string, callback: (error: Error | null, context?: tls.SecureContext) => void) {
      const context = contexts.get(servername.toLowerCase().replace(/\.$/, ""));
      if (context) callback(null, context);
      else callback(new Error(`no certificate for ${servername}`));
    },
  };
}
export type Edge = ReturnType<typeof createEdge>;
