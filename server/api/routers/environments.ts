import { z } from "zod";
import { requestDeployment } from "../../deployments/request-deployment";
import { createEnvironment, createEnvironmentInput, getEnvironment, listEnvironments } from "../../environments/environments";
import { deploymentOutput, environmentOutput, toDeployment, toEnvironment } from "../outputs";
import { procedure, router } from "../trpc";

export const environmentsRouter = router({
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/projects/{projectId}/environments", tags: ["environments"], summary: "List a project's environments" } })
    .input(z.object({ projectId: z.string().uuid() }))
    .output(z.array(environmentOutput))
    .query(async ({ ctx, input }) => (await listEnvironments(ctx.domain, input.projectId)).map(toEnvironment)),
  get: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/environments/{environmentId}", tags: ["environments"], summary: "Get an environment" } })
    .input(z.object({ environmentId: z.string().uuid() }))
    .output(environmentOutput)
    .query(async ({ ctx, input }) => toEnvironment(await getEnvironment(ctx.domain, input.environmentId))),
  create: procedure("DEVELOPER")
    .meta({ openapi: { method: "POST", path: "/environments", tags: ["environments"], summary: "Create an environment" } })
    .input(createEnvironmentInput)
    .output(environmentOutput)
    .mutation(async ({ ctx, input }) => toEnvironment(await createEnvironment(ctx.domain, input))),
  delete: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "DELETE",
        path: "/environments/{environmentId}",
        tags: ["environments"],
        summary: "Delete an environment: a DELETE deployment removes what runs, then the environment",
      },
    })
    .input(z.object({ environmentId: z.string().uuid() }))
    .output(deploymentOutput)
    .mutation(async ({ ctx, input }) => toDeployment((await requestDeployment(ctx.domain, { environmentId: input.environmentId, action: "DELETE" })).deployment)),
});
