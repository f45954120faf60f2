import { z } from "zod";
import { requestDeployment } from "../../deployments/request-deployment";
import { cloneEnvironment } from "../../environments/clone-environment";
import { cloneEnvironmentInput } from "../../environments/clone-environment.types";
import {
  createEnvironment,
  createEnvironmentInput,
  getEnvironment,
  listEnvironments,
  updateEnvironment,
  updateEnvironmentInput,
} from "../../environments/environments";
import { reapExpiredEnvironments } from "../../environments/lifecycle";
import { liveCommits } from "../../environments/live-commits";
import { createRule, createRuleInput, deleteRule, listRules } from "../../environments/rules";
import { deploymentOutput, environmentOutput, scheduleOutput, toDeployment, toEnvironment } from "../outputs";
import { procedure, router } from "../trpc";

const ruleOutput = z.object({
  id: z.string(),
  projectId: z.string(),
  namePattern: z.string(),
  priority: z.number(),
  mode: environmentOutput.shape.mode.nullable(),
  clusterId: z.string().nullable(),
  schedule: scheduleOutput.nullable(),
  lifetimeSeconds: z.number().nullable(),
});
const toRule = (rule: Awaited<ReturnType<typeof listRules>>[number]) => ({
  id: rule.id,
  projectId: rule.projectId,
  namePattern: rule.namePattern,
  priority: rule.priority,
  mode: rule.mode,
  clusterId: rule.clusterId,
  schedule: rule.schedule,
  lifetimeSeconds: rule.lifetimeSeconds,
});

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
    .mutation(async ({ ctx, input }) =>
      toDeployment((await requestDeployment(ctx.domain, { environmentId: input.environmentId, action: "DELETE" })).deployment),
    ),
  update: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "PATCH",
        path: "/environments/{environmentId}",
        tags: ["environments"],
        summary: "Change an environment's schedule, expiry or protection",
      },
    })
    .input(updateEnvironmentInput)
    .output(environmentOutput)
    .mutation(async ({ ctx, input }) => toEnvironment(await updateEnvironment(ctx.domain, input))),
  clone: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "POST",
        path: "/environments/{environmentId}/clone",
        tags: ["environments"],
        summary: "Clone an environment: services, variables and secrets",
      },
    })
    .input(cloneEnvironmentInput)
    .output(
      z.object({
        environment: environmentOutput,
        deployment: deploymentOutput.nullable(),
        /** With a deployment: per copied service built from git, the commit it deploys; null: its branch's latest. */
        commits: z.array(z.object({ service: z.string(), commit: z.string().nullable() })),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const { environment, deployment, commits } = await cloneEnvironment(ctx.domain, input);
      return { environment: toEnvironment(environment), deployment: deployment ? toDeployment(deployment) : null, commits };
    }),
  liveCommits: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/environments/{environmentId}/live-commits",
        tags: ["environments"],
        summary: "The commit each service built from git runs: its live release's (what a clone deploys by default)",
      },
    })
    .input(z.object({ environmentId: z.string().uuid() }))
    .output(z.array(z.object({ serviceId: z.string(), service: z.string(), commit: z.string(), subject: z.string().nullable(), deploymentId: z.string() })))
    .query(async ({ ctx, input }) => {
      const environment = await getEnvironment(ctx.domain, input.environmentId);
      return [...(await liveCommits(ctx.domain.db, environment.organizationId, environment.id)).values()];
    }),
  reap: procedure("ADMIN")
    .meta({
      openapi: { method: "POST", path: "/environments/reap", tags: ["environments"], summary: "Delete expired environments now (dryRun: only list them)" },
    })
    .input(z.object({ dryRun: z.boolean().default(true) }))
    .output(
      z.object({
        dryRun: z.boolean(),
        environments: z.array(z.object({ environmentId: z.string(), name: z.string(), project: z.string(), expiredAt: z.string() })),
        /** Files engines keep of services that no longer exist: removed by their engine at its next report. */
        leftovers: z.array(z.object({ cluster: z.string(), serviceId: z.string(), bytes: z.number(), since: z.string() })),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const outcome = await reapExpiredEnvironments(ctx.domain, { dryRun: input.dryRun, organizationId: ctx.actor.organizationId });
      return {
        dryRun: outcome.dryRun,
        environments: outcome.environments.map(({ environmentId, name, project, expiredAt }) => ({ environmentId, name, project, expiredAt })),
        leftovers: outcome.leftovers.map(({ cluster, serviceId, bytes, since }) => ({ cluster, serviceId, bytes, since })),
      };
    }),
  rules: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/projects/{projectId}/rules", tags: ["environments"], summary: "The project's rules for new environments" } })
    .input(z.object({ projectId: z.string().uuid() }))
    .output(z.array(ruleOutput))
    .query(async ({ ctx, input }) => (await listRules(ctx.domain, input.projectId)).map(toRule)),
  createRule: procedure("ADMIN")
    .meta({ openapi: { method: "POST", path: "/projects/{projectId}/rules", tags: ["environments"], summary: "Add a rule for new environments" } })
    .input(createRuleInput)
    .output(ruleOutput)
    .mutation(async ({ ctx, input }) => toRule(await createRule(ctx.domain, input))),
  deleteRule: procedure("ADMIN")
    .meta({ openapi: { method: "DELETE", path: "/rules/{ruleId}", tags: ["environments"], summary: "Remove a rule" } })
    .input(z.object({ ruleId: z.string().uuid() }))
    .output(ruleOutput)
    .mutation(async ({ ctx, input }) => toRule(await deleteRule(ctx.domain, input.ruleId))),
});
