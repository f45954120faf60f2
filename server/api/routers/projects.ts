import { z } from "zod";
import { createProject, createProjectInput, deleteProject, listProjects } from "../../projects/projects";
import { projectOutput, toProject } from "../outputs";
import { procedure, router } from "../trpc";

export const projectsRouter = router({
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/projects", tags: ["projects"], summary: "List projects" } })
    .input(z.object({}))
    .output(z.array(projectOutput))
    .query(async ({ ctx }) => (await listProjects(ctx.domain)).map(toProject)),
  create: procedure("DEVELOPER")
    .meta({ openapi: { method: "POST", path: "/projects", tags: ["projects"], summary: "Create a project" } })
    .input(createProjectInput)
    .output(projectOutput)
    .mutation(async ({ ctx, input }) => toProject(await createProject(ctx.domain, input))),
  delete: procedure("ADMIN")
    .meta({ openapi: { method: "DELETE", path: "/projects/{projectId}", tags: ["projects"], summary: "Delete an empty project" } })
    .input(z.object({ projectId: z.string().uuid() }))
    .output(projectOutput)
    .mutation(async ({ ctx, input }) => toProject(await deleteProject(ctx.domain, input.projectId))),
});
