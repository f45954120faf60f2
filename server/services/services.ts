import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { applicationConfig, containerConfig, dnsLabel, type ContainerConfig } from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import { clusters, services } from "../db/schema";
import { getEnvironment } from "../environments/environments";
import { AppError, notFound } from "../errors";
import { cipherFor } from "../secrets/organization-cipher";
import { containerConfigOf } from "./configs";
import { hideRegistryPassword, sealRegistryPassword } from "./registry-credentials";

/**
 * An APPLICATION built from git (the default kind), or a CONTAINER run from an existing image.
 * One object rather than a union, so REST clients get one documented shape; the kind and the
 * config are checked against each other.
 */
export const createServiceInput = z
  .object({
    environmentId: z.string().uuid(),
    name: dnsLabel,
    kind: z.enum(["APPLICATION", "CONTAINER"]).default("APPLICATION"),
    config: z.union([applicationConfig, containerConfig]),
  })
  .superRefine((input, context) => {
    if ((input.kind === "CONTAINER") !== !("git" in input.config)) {
      context.addIssue({ code: "custom", path: ["config"], message: input.kind === "CONTAINER" ? "a CONTAINER service needs an image" : "an APPLICATION service needs a git source" });
    }
  });

/**
 * A partial configuration, checked against the service's kind once merged; `null` clears an
 * optional setting (back to detection or the default).
 */
export const updateServiceInput = z.object({
  serviceId: z.string().uuid(),
  config: z.record(z.string(), z.unknown()),
});

/** What the API may show of a stored config: the registry password stays hidden. */
export function visibleConfig(service: typeof services.$inferSelect) {
  const container = containerConfigOf(service);
  return container ? hideRegistryPassword(container) : service.config;
}

/** A cluster whose engine said what it runs refuses other kinds up front, with the reason. */
async function assertClusterRuns(ctx: DomainContext, clusterId: string, kind: string) {
  const [cluster] = await ctx.db.select().from(clusters).where(eq(clusters.id, clusterId));
  const kinds = cluster?.capabilities.serviceKinds;
  if (cluster && kinds && !kinds.includes(kind)) {
    throw new AppError("INVALID", `Cluster "${cluster.name}" cannot run ${kind} services: its engine runs ${kinds.join(", ")}`);
  }
}

export async function listServices(ctx: DomainContext, environmentId: string) {
  const { db, actor } = ctx;
  await getEnvironment(ctx, environmentId);
  return db
    .select()
    .from(services)
    .where(and(eq(services.environmentId, environmentId), eq(services.organizationId, actor.organizationId)))
    .orderBy(asc(services.name));
}

export async function getService({ db, actor }: DomainContext, serviceId: string) {
  const [service] = await db
    .select()
    .from(services)
    .where(and(eq(services.id, serviceId), eq(services.organizationId, actor.organizationId)));
  if (!service) throw notFound("Service");
  return service;
}

export async function createService(ctx: DomainContext, input: z.input<typeof createServiceInput>) {
  const parsed = createServiceInput.parse(input);
  const environment = await getEnvironment(ctx, parsed.environmentId);
  await assertClusterRuns(ctx, environment.clusterId, parsed.kind);
  const config = "git" in parsed.config ? parsed.config : sealRegistryPassword(await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId), parsed.config);
  return ctx.db.transaction(async (tx) => {
    const [service] = await conflictOnDuplicate(`Service "${parsed.name}" in environment "${environment.name}"`, () =>
      tx
        .insert(services)
        .values({ organizationId: ctx.actor.organizationId, environmentId: environment.id, name: parsed.name, kind: parsed.kind, config })
        .returning(),
    );
    await recordAudit(tx, ctx.actor, {
      action: "service.create",
      targetType: "service",
      targetId: service!.id,
      changes: { name: parsed.name, kind: parsed.kind, config: visibleConfig(service!) },
    });
    return service!;
  });
}

export async function updateService(ctx: DomainContext, input: z.infer<typeof updateServiceInput>) {
  const service = await getService(ctx, input.serviceId);
  const merged: Record<string, unknown> = { ...service.config, ...input.config };
  for (const [key, value] of Object.entries(merged)) if (value === null) delete merged[key];
  const stored = containerConfigOf(service);
  let config;
  if (stored) {
    // The image merges one level deeper, so a new tag keeps the registry credentials; a
    // password given in the update is new and sealed now, otherwise the stored one stays sealed.
    const image = (input.config.image ?? {}) as { credentials?: { username?: string; password?: string } | null };
    const newPassword = typeof image.credentials?.password === "string";
    const credentials =
      image.credentials === null ? undefined : image.credentials ? { ...stored.image.credentials, ...image.credentials } : stored.image.credentials;
    const next = containerConfig.parse({ ...merged, image: { ...stored.image, ...image, credentials } });
    config = newPassword ? sealRegistryPassword(await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId), next) : (next satisfies ContainerConfig);
  } else {
    config = applicationConfig.parse(merged);
  }
  return ctx.db.transaction(async (tx) => {
    const [updated] = await tx.update(services).set({ config }).where(eq(services.id, service.id)).returning();
    await recordAudit(tx, ctx.actor, {
      action: "service.update",
      targetType: "service",
      targetId: service.id,
      changes: { before: visibleConfig(service), after: visibleConfig(updated!) },
    });
    return updated!;
  });
}
