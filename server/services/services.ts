import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { applicationConfig, dnsLabel } from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import { services } from "../db/schema";
import { getEnvironment } from "../environments/environments";
import { notFound } from "../errors";

export const createServiceInput = z.object({
  environmentId: z.string().uuid(),
  name: dnsLabel,
  kind: z.literal("APPLICATION").default("APPLICATION"),
  config: applicationConfig,
});

/** A partial configuration; `null` clears an optional setting (back to detection or the default). */
export const updateServiceInput = z.object({
  serviceId: z.string().uuid(),
  config: applicationConfig.partial().extend({
    buildCommand: applicationConfig.shape.buildCommand.unwrap().nullable().optional(),
    startCommand: applicationConfig.shape.startCommand.unwrap().nullable().optional(),
    port: applicationConfig.shape.port.unwrap().nullable().optional(),
    healthCheckPath: applicationConfig.shape.healthCheckPath.unwrap().nullable().optional(),
  }),
});

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

export async function createService(ctx: DomainContext, input: z.infer<typeof createServiceInput>) {
  const environment = await getEnvironment(ctx, input.environmentId);
  return ctx.db.transaction(async (tx) => {
    const [service] = await conflictOnDuplicate(`Service "${input.name}" in environment "${environment.name}"`, () =>
      tx
        .insert(services)
        .values({ organizationId: ctx.actor.organizationId, environmentId: environment.id, name: input.name, kind: input.kind, config: input.config })
        .returning(),
    );
    await recordAudit(tx, ctx.actor, {
      action: "service.create",
      targetType: "service",
      targetId: service!.id,
      changes: { name: input.name, kind: input.kind, config: input.config },
    });
    return service!;
  });
}

export async function updateService(ctx: DomainContext, input: z.infer<typeof updateServiceInput>) {
  const service = await getService(ctx, input.serviceId);
  const merged: Record<string, unknown> = { ...service.config, ...input.config };
  for (const [key, value] of Object.entries(merged)) if (value === null) delete merged[key];
  const config = applicationConfig.parse(merged);
  return ctx.db.transaction(async (tx) => {
    const [updated] = await tx.update(services).set({ config }).where(eq(services.id, service.id)).returning();
    await recordAudit(tx, ctx.actor, {
      action: "service.update",
      targetType: "service",
      targetId: service.id,
      changes: { before: service.config, after: config },
    });
    return updated!;
  });
}
