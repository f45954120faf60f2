import { z } from "zod";
import { MAX_LABEL_LENGTH } from "../services/domains";

/**
 * The most characters of a domain suffix: a hostname, `<label>.<suffix>`, may have 253 (the 255
 * octets of RFC 1035, section 2.3.4, as DNS sends it), and a generated label up to 63. Only new
 * clusters are held to it: one saved with a longer suffix keeps it, as do its services' hostnames.
 */
export const MAX_DOMAIN_SUFFIX_LENGTH = 253 - MAX_LABEL_LENGTH - 1;

const DNS_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/**
 * The first label of `name` DNS would refuse for its length, with why, or null. The total length
 * alone let a suffix of one 100-character label through: resolvers, ACME CAs and the suffix's
 * wildcard record refuse it, so every hostname of the cluster would be unreachable.
 */
function overlongLabelOf(name: string): string | null {
  const label = name.split(".").find((part) => part.length > MAX_LABEL_LENGTH);
  if (!label) return null;
  return `its label ${label.slice(0, 20)}… has ${label.length} characters, and a DNS label may have at most ${MAX_LABEL_LENGTH}`;
}

/**
 * A cluster's domain suffix, as a new cluster (clusters.create) or SLIPWAY_DOMAIN (the `local`
 * cluster's, on the first start) gives it: services are served at
 * `<service>-<env>-<project>.<suffix>`, so it must be a DNS name with room for that first label.
 */
export const domainSuffix = z
  .string()
  .max(
    MAX_DOMAIN_SUFFIX_LENGTH,
    `use at most ${MAX_DOMAIN_SUFFIX_LENGTH} characters: a hostname, <service>-<env>-<project>.<domainSuffix>, may have 253, and its first label ${MAX_LABEL_LENGTH}`,
  )
  .regex(DNS_NAME, "use a DNS name: lowercase letters, digits, hyphens and dots, such as apps.example.com")
  .superRefine((name, ctx) => {
    const problem = overlongLabelOf(name);
    if (problem) ctx.addIssue({ code: "custom", message: `use a DNS name: ${problem}` });
  });
