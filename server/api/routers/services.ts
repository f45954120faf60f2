import { z } from "zod";
import { requestDeployment } from "../../deployments/request-deployment";
import { createService, createServiceInput, getService, listServices, updateService, updateServiceInput } from "../../services/services";
import { buildPlanOutput, serviceBuildPlan } from "../../services/build-plan";
import { getGitTriggers, setGitTriggers, setGitTriggersInput } from "../../webhooks/triggers";
import { deploymentOutput, serviceOutput, toDeployment, toService } from "../outputs";
import { procedure, router } from "../trpc";

/** When pushes deploy the service (server/webhooks/triggers.ts). */
const gitTriggersOutput = z.object({
  serviceId: z.string(),
  autoDeploy: z.boolean(),
  includePaths: z.array(z.string()),
  excludePaths: z.array(z.string()),
  followTags: z.boolean(),
});

export const servicesRouter = router({
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/environments/{environmentId}/services", tags: ["services"], summary: "List an environment's services" } })
    .input(z.object({ environmentId: z.string().uuid() }))
    .output(z.array(serviceOutput))
    .query(async ({ ctx, input }) => (await listServices(ctx.domain, input.environmentId)).map(toService)),
  get: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/services/{serviceId}", tags: ["services"], summary: "Get a service" } })
    .input(z.object({ serviceId: z.string().uuid() }))
    .output(serviceOutput)
    .query(async ({ ctx, input }) => toService(await getService(ctx.domain, input.serviceId))),
  create: procedure("DEVELOPER")
    .meta({ openapi: { method: "POST", path: "/services", tags: ["services"], summary: "Create a service" } })
    .input(createServiceInput)
    .output(serviceOutput)
    .mutation(async ({ ctx, input }) => toService(await createService(ctx.domain, input))),
  update: procedure("DEVELOPER")
    .meta({ openapi: { method: "PATCH", path: "/services/{serviceId}", tags: ["services"], summary: "Change a service's configuration" } })
    .input(updateServiceInput)
    .output(serviceOutput)
    .mutation(async ({ ctx, input }) => toService(await updateService(ctx.domain, input))),
  delete: procedure("DEVELOPER")
    .meta({
      openapi: { method: "DELETE", path: "/services/{serviceId}", tags: ["services"], summary: "Delete a service through a DELETE deployment" },
    })
    .input(z.object({ serviceId: z.string().uuid() }))
    .output(deploymentOutput)
    .mutation(async ({ ctx, input }) => {
      const service = await getService(ctx.domain, input.serviceId);
      const { deployment } = await requestDeployment(ctx.domain, { environmentId: service.environmentId, action: "DELETE", serviceIds: [service.id] });
      return toDeployment(deployment);
    }),
  plan: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/services/{serviceId}/plan",
        tags: ["services"],
        summary: "How a deployment would build and start the service now: what is detected in its branch, and why",
      },
    })
    .input(z.object({ serviceId: z.string().uuid() }))
    .output(buildPlanOutput)
    .query(async ({ ctx, input }) => serviceBuildPlan(ctx.domain, input.serviceId)),
  gitTriggers: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/services/{serviceId}/git-triggers", tags: ["services"], summary: "When pushes deploy the service" } })
    .input(z.object({ serviceId: z.string().uuid() }))
    .output(gitTriggersOutput)
    .query(async ({ ctx, input }) => getGitTriggers(ctx.domain, input.serviceId)),
  setGitTriggers: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "PUT",
        path: "/services/{serviceId}/git-triggers",
        tags: ["services"],
        summary: "Set when pushes deploy the service: auto-deploy, path filters, tags",
      },
    })
    .input(setGitTriggersInput)
    .output(gitTriggersOutput)
    .mutation(async ({ ctx, input }) => setGitTriggers(ctx.domain, input)),
});
