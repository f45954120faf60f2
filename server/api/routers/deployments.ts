import { z } from "zod";
import { cancelDeployment } from "../../deployments/cancel-deployment";
import { getDeployment, getDeploymentChanges, listDeploymentEvents, listDeployments } from "../../deployments/queries";
import { requestDeployment, requestDeploymentInput } from "../../deployments/request-deployment";
import { planPromotion, promoteEnvironment, promoteInput } from "../../deployments/promote";
import { rollbackDeployment, rollbackInput } from "../../deployments/rollback";
import { deploymentSummaryOutput, getDeploymentSummary } from "../../deployments/summary";
import { logReleases, logReleasesInput, readLogs, readLogsInput } from "../../logs/read-logs";
import { integerParam } from "../../input-schemas";
import { serviceOutcomes } from "../../overview/live-status";
import { deploymentStatus } from "../../../engine/protocol/events";
import { deploymentChangesOutput, deploymentEventOutput, deploymentOutput, logLineOutput, toDeployment, toDeploymentEvent, toLogLine } from "../outputs";
import { procedure, router } from "../trpc";

/** By service id, what the deployment did to that service (server/overview/live-status.ts, outcomeOf): a service's history shows its own. */
const serviceOutcomesOutput = z.record(z.string(), deploymentStatus);

export const deploymentsRouter = router({
  create: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "POST",
        path: "/deployments",
        tags: ["deployments"],
        summary: "Deploy, stop, restart or delete an environment or some of its services",
      },
    })
    .input(requestDeploymentInput)
    .output(z.object({ deployment: deploymentOutput, merged: z.boolean() }))
    .mutation(async ({ ctx, input }) => {
      const { deployment, merged } = await requestDeployment(ctx.domain, input);
      return { deployment: toDeployment(deployment), merged };
    }),
  rollback: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "POST",
        path: "/environments/{environmentId}/rollback",
        tags: ["deployments"],
        summary: "Redeploy an earlier successful deployment as it was: same commits, configuration and variables",
      },
    })
    .input(rollbackInput)
    .output(deploymentOutput)
    .mutation(async ({ ctx, input }) => toDeployment(await rollbackDeployment(ctx.domain, input))),
  promote: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "POST",
        path: "/environments/{toEnvironmentId}/promote",
        tags: ["deployments"],
        summary: "Deploy into this environment the commits another one of the project runs (staging to production)",
      },
    })
    .input(promoteInput)
    .output(z.object({ deployment: deploymentOutput, merged: z.boolean() }))
    .mutation(async ({ ctx, input }) => {
      const { deployment, merged } = await promoteEnvironment(ctx.domain, input);
      return { deployment: toDeployment(deployment), merged };
    }),
  promotePlan: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/environments/{toEnvironmentId}/promote",
        tags: ["deployments"],
        summary: "What promoting another environment into this one would deploy: each service and its commit (nothing is deployed)",
      },
    })
    .input(promoteInput)
    .output(
      z.object({
        from: z.object({ id: z.string(), name: z.string() }),
        to: z.object({ id: z.string(), name: z.string() }),
        sourceDeploymentId: z.string(),
        services: z.array(z.object({ serviceId: z.string(), name: z.string(), commit: z.string() })),
        skipped: z.array(z.string()),
      }),
    )
    .query(({ ctx, input }) => planPromotion(ctx.domain, input)),
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/environments/{environmentId}/deployments", tags: ["deployments"], summary: "Deployment history" } })
    .input(z.object({ environmentId: z.string().uuid(), limit: integerParam({ min: 1, max: 200 }).default(50) }))
    .output(z.array(deploymentOutput.extend({ outcomes: serviceOutcomesOutput })))
    .query(async ({ ctx, input }) => {
      const rows = await listDeployments(ctx.domain, input.environmentId, input.limit);
      const outcomes = await serviceOutcomes(ctx.domain.db, rows);
      return rows.map((row) => ({ ...toDeployment(row), outcomes: outcomes.get(row.id) ?? {} }));
    }),
  get: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/deployments/{deploymentId}", tags: ["deployments"], summary: "Get a deployment" } })
    .input(z.object({ deploymentId: z.string().uuid() }))
    .output(deploymentOutput)
    .query(async ({ ctx, input }) => toDeployment(await getDeployment(ctx.domain, input.deploymentId))),
  summary: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/deployments/{deploymentId}/summary",
        tags: ["deployments"],
        summary: "What a deployment left live: per service, its stage, its outcome and the release that serves it",
      },
    })
    .input(z.object({ deploymentId: z.string().uuid() }))
    .output(deploymentSummaryOutput)
    .query(({ ctx, input }) => getDeploymentSummary(ctx.domain, input.deploymentId)),
  changes: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/deployments/{deploymentId}/changes",
        tags: ["deployments"],
        summary: "What a deployment changes since the last successful deployment of each service: commits, configuration fields, variable keys",
      },
    })
    .input(z.object({ deploymentId: z.string().uuid() }))
    .output(deploymentChangesOutput)
    .query(({ ctx, input }) => getDeploymentChanges(ctx.domain, input.deploymentId)),
  events: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/deployments/{deploymentId}/events", tags: ["deployments"], summary: "A deployment's events after an event id" } })
    .input(z.object({ deploymentId: z.string().uuid(), after: integerParam({ min: 0, max: Number.MAX_SAFE_INTEGER }).default(0) }))
    .output(z.array(deploymentEventOutput))
    .query(async ({ ctx, input }) => (await listDeploymentEvents(ctx.domain, input.deploymentId, input.after)).map(toDeploymentEvent)),
  cancel: procedure("DEVELOPER")
    .meta({ openapi: { method: "POST", path: "/deployments/{deploymentId}/cancel", tags: ["deployments"], summary: "Cancel a deployment" } })
    .input(z.object({ deploymentId: z.string().uuid() }))
    .output(deploymentOutput)
    .mutation(async ({ ctx, input }) => toDeployment(await cancelDeployment(ctx.domain, input.deploymentId))),
  logs: procedure("VIEWER")
    .meta({
      openapi: { method: "GET", path: "/logs", tags: ["logs"], summary: "Build or runtime log lines after a sequence number, optionally filtered" },
    })
    .input(readLogsInput)
    .output(z.array(logLineOutput))
    .query(async ({ ctx, input }) => (await readLogs(ctx.domain, input)).map(toLogLine)),
  logReleases: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/logs/releases",
        tags: ["logs"],
        summary: "The releases a service's runtime log holds lines of, the latest to log first (for the release filter)",
      },
    })
    .input(logReleasesInput)
    .output(z.array(z.object({ releaseId: z.string(), firstAt: z.string(), lastAt: z.string() })))
    .query(({ ctx, input }) => logReleases(ctx.domain, input)),
});
