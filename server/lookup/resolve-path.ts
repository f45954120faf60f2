import { and, eq } from "drizzle-orm";
import { z } from "zod";
import type { DomainContext } from "../context";
import { environments, projects, services } from "../db/schema";
import { AppError } from "../errors";

export const resolvePathInput = z.object({ path: z.string().min(1).max(200) });

/**
 * Resolves a human path `project[/environment[/service]]` to ids, as the CLI names things.
 * Each segment is looked up inside the previous one and inside the caller's organization.
 */
export async function resolvePath({ db, actor }: DomainContext, path: string) {
  const [projectName, environmentName, serviceName, ...rest] = path.split("/");
  if (!projectName || rest.length > 0) throw new AppError("INVALID", `"${path}" is not a path of the form project[/environment[/service]]`);
  const [project] = await db
    .select()
    .from(projects)
    .where(and(eq(projects.organizationId, actor.organizationId), eq(projects.name, projectName)));
  if (!project) throw new AppError("NOT_FOUND", `Project "${projectName}" not found`);
  if (!environmentName) return { projectId: project.id, environmentId: null, serviceId: null };
  const [environment] = await db
    .select()
    .from(environments)
    .where(and(eq(environments.projectId, project.id), eq(environments.name, environmentName)));
  if (!environment) throw new AppError("NOT_FOUND", `Environment "${projectName}/${environmentName}" not found`);
  if (!serviceName) return { projectId: project.id, environmentId: environment.id, serviceId: null };
  const [service] = await db
    .select()
    .from(services)
    .where(and(eq(services.environmentId, environment.id), eq(services.name, serviceName)));
  if (!service) throw new AppError("NOT_FOUND", `Service "${path}" not found`);
  return { projectId: project.id, environmentId: environment.id, serviceId: service.id };
}
