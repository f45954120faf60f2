import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { recordAudit, REDACTED } from "../../audit/record-audit";
import type { DomainContext, Services } from "../../context";
import type { Executor } from "../../db/client";
import { conflictOnDuplicate } from "../../db/errors";
import { dnsProviders, serviceDomains } from "../../db/schema";
import { AppError, notFound } from "../../errors";
import type { OrganizationCipher } from "../../secrets/keyring";
import { cipherFor } from "../../secrets/organization-cipher";
import { createDnsProviderInput, dnsProviderSettings, updateDnsProviderInput } from "./inputs";
import { isInZone, openDnsProvider, type DnsProviderAccess } from "./provider";

/**
 * An organization's DNS providers (issue 16, part 1): a zone and the API token that edits it,
 * for ACME DNS-01. The token is checked against the provider before it is saved, sealed with
 * the organization's data key, and never leaves the control plane: the API shows its last
 * characters only.
 */

type DnsProviderRow = typeof dnsProviders.$inferSelect;

/** Authenticated data of a sealed token: the ciphertext cannot be moved to another provider. */
const tokenContext = (providerId: string) => `dns_provider:${providerId}:token`;

/** The end of a token, enough to tell two apart, too little to guess it; nothing of a short one. */
function hintOf(value: string): string {
  return value.length >= 16 ? `…${value.slice(-4)}` : "…";
}

export function describeDnsProvider(row: DnsProviderRow) {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    zone: row.zone,
    settings: dnsProviderSettings.parse(row.settings),
    tokenHint: row.tokenHint,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Asks the provider whether the token edits the zone, before anything is saved: a wrong one is refused with the provider's reason. */
async function checkAccess(access: DnsProviderAccess): Promise<void> {
  try {
    await openDnsProvider(access).check();
  } catch (error) {
    throw new AppError("INVALID", `the token was not saved: ${(error as Error).message}`);
  }
}

export async function listDnsProviders(ctx: DomainContext) {
  return ctx.db.select().from(dnsProviders).where(eq(dnsProviders.organizationId, ctx.actor.organizationId)).orderBy(dnsProviders.name);
}

async function providerOf(db: Executor, organizationId: string, providerId: string): Promise<DnsProviderRow> {
  const [row] = await db
    .select()
    .from(dnsProviders)
    .where(and(eq(dnsProviders.id, providerId), eq(dnsProviders.organizationId, organizationId)));
  if (!row) throw notFound("DNS provider");
  return row;
}

export async function createDnsProvider(ctx: DomainContext, input: z.infer<typeof createDnsProviderInput>) {
  await checkAccess({ name: input.name, zone: input.zone, settings: input.settings, token: input.token });
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const id = randomUUID();
  return ctx.db.transaction(async (tx) => {
    const [row] = await conflictOnDuplicate(`A DNS provider named ${input.name}`, () =>
      tx
        .insert(dnsProviders)
        .values({
          id,
          organizationId: ctx.actor.organizationId,
          name: input.name,
          kind: input.settings.kind,
          zone: input.zone,
          settings: input.settings,
          encryptedToken: cipher.encrypt(input.token, tokenContext(id)),
          tokenHint: hintOf(input.token),
        })
        .returning(),
    );
    await recordAudit(tx, ctx.actor, {
      action: "dns_provider.create",
      targetType: "dns_provider",
      targetId: id,
      changes: { name: input.name, kind: input.settings.kind, zone: input.zone, settings: input.settings, token: REDACTED },
    });
    return row!;
  });
}

/** Changes a provider's zone, settings or token; whatever changes is checked against the provider first. */
export async function updateDnsProvider(ctx: DomainContext, input: z.infer<typeof updateDnsProviderInput>) {
  const existing = await providerOf(ctx.db, ctx.actor.organizationId, input.dnsProviderId);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const zone = input.zone ?? existing.zone;
  const settings = input.settings ?? dnsProviderSettings.parse(existing.settings);
  if (settings.kind !== existing.kind) throw new AppError("INVALID", `${existing.name} is a ${existing.kind} provider: add a new provider for another kind`);
  const newToken = input.token ?? cipher.decrypt(existing.encryptedToken, tokenContext(existing.id));
  if (zone !== existing.zone) await assertDomainsInZone(ctx.db, existing, zone);
  await checkAccess({ name: existing.name, zone, settings, token: newToken });
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .update(dnsProviders)
      .set({
        zone,
        settings,
        ...(input.token ? { encryptedToken: cipher.encrypt(input.token, tokenContext(existing.id)), tokenHint: hintOf(input.token) } : {}),
        updatedAt: ctx.now(),
      })
      .where(eq(dnsProviders.id, existing.id))
      .returning();
    await recordAudit(tx, ctx.actor, {
      action: "dns_provider.update",
      targetType: "dns_provider",
      targetId: existing.id,
      changes: {
        name: existing.name,
        ...(input.zone ? { zone } : {}),
        ...(input.settings ? { settings } : {}),
        ...(input.token ? { token: REDACTED } : {}),
      },
    });
    return row!;
  });
}

/** A zone change must keep every domain that uses the provider inside the zone. */
async function assertDomainsInZone(db: Executor, provider: DnsProviderRow, zone: string) {
  const users = await db.select({ hostname: serviceDomains.hostname }).from(serviceDomains).where(eq(serviceDomains.dnsProviderId, provider.id));
  const outside = users.filter((domain) => !isInZone(domain.hostname, zone)).map((domain) => domain.hostname);
  if (outside.length > 0)
    throw new AppError("CONFLICT", `${outside.join(", ")} use ${provider.name} and are not in ${zone}: switch them to another challenge first`);
}

export async function removeDnsProvider(ctx: DomainContext, providerId: string) {
  const existing = await providerOf(ctx.db, ctx.actor.organizationId, providerId);
  const users = await ctx.db.select({ hostname: serviceDomains.hostname }).from(serviceDomains).where(eq(serviceDomains.dnsProviderId, existing.id));
  if (users.length > 0)
    throw new AppError(
      "CONFLICT",
      `${existing.name} issues the certificates of ${users.map((domain) => domain.hostname).join(", ")}: switch them to HTTP-01 or another provider first`,
    );
  await ctx.db.transaction(async (tx) => {
    await tx.delete(dnsProviders).where(eq(dnsProviders.id, existing.id));
    await recordAudit(tx, ctx.actor, {
      action: "dns_provider.remove",
      targetType: "dns_provider",
      targetId: existing.id,
      changes: { name: existing.name, zone: existing.zone },
    });
  });
  return existing;
}

/** The provider of a domain, opened with its token for the worker's DNS-01 challenge. */
export async function openProviderFor(
  services: Services,
  organizationId: string,
  providerId: string,
  cipher?: OrganizationCipher,
): Promise<{ row: DnsProviderRow; access: DnsProviderAccess }> {
  const row = await providerOf(services.db, organizationId, providerId);
  const opened = cipher ?? (await cipherFor(services.db, services.keyring, organizationId));
  return {
    row,
    access: {
      name: row.name,
      zone: row.zone,
      settings: dnsProviderSettings.parse(row.settings),
      token: opened.decrypt(row.encryptedToken, tokenContext(row.id)),
    },
  };
}

/** A provider of the caller's organization whose zone holds `hostname`, for a domain choosing DNS-01. */
export async function providerForDomain(db: Executor, organizationId: string, providerId: string, hostname: string): Promise<DnsProviderRow> {
  const row = await providerOf(db, organizationId, providerId);
  if (!isInZone(hostname, row.zone)) throw new AppError("INVALID", `${hostname} is not in the zone ${row.zone} of the DNS provider ${row.name}`);
  return row;
}
