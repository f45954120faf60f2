import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { dnsLabel } from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import { environments, projects } from "../db/schema";
import { AppError, notFound } from "../errors";

export const createProjectInput = z.object({ name: dnsLabel });

export async function listProjects({ db, actor }: DomainContext) {
  return db.select().from(projects).where(eq(projects.organizationId, actor.organizationId)).orderBy(asc(projects.name));
}

export async function getProject({ db, actor }: DomainContext, projectId: string) {
  const [project] = await db
    .select()
    .from(projects)
    .where(and(eq(projects.id, projectId), eq(projects.organizationId, actor.organizationId)));
  if (!project) throw notFound("Project");
  return project;
}

export async function createProject(ctx: DomainContext, input: z.infer<typeof createProjectInput>) {
  return ctx.db.transaction(async (tx) => {
    const [project] = await conflictOnDuplicate(`Project "${input.name}"`, () =>
      tx.insert(projects).values({ organizationId: ctx.actor.organizationId, name: input.name }).returning(),
    );
    await recordAudit(tx, ctx.actor, { action: "project.create", targetType: "project", targetId: project!.id, changes: { name: input.name } });
    return project!;
  });
}

/** Deletes an empty project; environments are deleted first, each through a DELETE deployment. */
export async function deleteProject(ctx: DomainContext, projectId: string) {
  const project = await getProject(ctx, projectId);
  const [environment] = await ctx.db.select({ name: environments.name }).from(environments).where(eq(environments.projectId, project.id)).limit(1);
  if (environment) throw new AppError("CONFLICT", `Project "${project.name}" still has environments (for example "${environment.name}"): delete them first`);
  await ctx.db.transaction(async (tx) => {
    await tx.delete(projects).where(eq(projects.id, project.id));
    await recordAudit(tx, ctx.actor, { action: "project.delete", targetType: "project", targetId: project.id, changes: { name: project.name } });
  });
  return project;
}
