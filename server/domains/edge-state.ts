import { eq } from "drizzle-orm";
import type { EdgeState } from "../../engine/protocol/edge";
import type { Services } from "../context";
import { environments, serviceDomains } from "../db/schema";
import type { OrganizationCipher } from "../secrets/keyring";
import { cipherFor } from "../secrets/organization-cipher";
import { keyContext } from "./domains";
import { refusalOf, selectDomainsWithCluster } from "./refusal";

/**
 * What a cluster's router needs of the custom domains of its services (`edge:pull`): private
 * keys are opened here, for the engine of that cluster only, and travel on its authenticated
 * socket; they are never logged. Refused domains (refusal.ts) are left out.
 */
export async function edgeStateOf(services: Services, clusterId: string): Promise<EdgeState> {
  const rows = await selectDomainsWithCluster(services.db).where(eq(environments.clusterId, clusterId)).orderBy(serviceDomains.hostname);
  const ciphers = new Map<string, OrganizationCipher>();
  const cipherOf = async (organizationId: string) => {
    let cipher = ciphers.get(organizationId);
    if (!cipher) ciphers.set(organizationId, (cipher = await cipherFor(services.db, services.keyring, organizationId)));
    return cipher;
  };
  const domains: EdgeState["domains"] = [];
  for (const { domain, cluster } of rows) {
    // Not routed, nor its token or challenge answered, nor its certificate handed over.
    if (refusalOf(domain.hostname, cluster)) continue;
    const verified = domain.verifiedAt !== null;
    const certificate =
      verified && domain.certificatePem && domain.encryptedPrivateKey
        ? { certPem: domain.certificatePem, keyPem: (await cipherOf(domain.organizationId)).decrypt(domain.encryptedPrivateKey, keyContext(domain.id)) }
        : null;
    domains.push({
      hostname: domain.hostname,
      serviceId: domain.serviceId,
      verified,
      verificationToken: !verified && domain.verificationMethod === "HTTP_TOKEN" ? domain.verificationToken : null,
      redirectHttps: domain.redirectHttps,
      acmeChallenge: domain.acmeChallenge,
      certificate,
    });
  }
  return { domains };
}
