import { z } from "zod";
import { listAudit, listAuditInput } from "../../audit/list-audit";
import { resolvePath, resolvePathInput } from "../../lookup/resolve-path";
import { myOrganizations, organizationOverview } from "../../overview/overview";
import { createApiToken, createApiTokenInput, listApiTokens, revokeApiToken } from "../../tokens/api-tokens";
import { deploymentStatus } from "../../../engine/protocol/events";
import { deploymentAction, environmentMode, serviceKind } from "../../../engine/protocol/snapshot";
import { roleSchema, serviceOutput } from "../outputs";
import { procedure, router } from "../trpc";

const apiTokenOutput = z.object({
  id: z.string(),
  name: z.string(),
  role: roleSchema,
  prefix: z.string(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  createdAt: z.string(),
});
const toApiToken = (row: Awaited<ReturnType<typeof listApiTokens>>[number]) => ({
  id: row.id,
  name: row.name,
  role: row.role,
  prefix: row.prefix,
  lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
  revokedAt: row.revokedAt?.toISOString() ?? null,
  createdAt: row.createdAt.toISOString(),
});

/** A name and, while the thing exists, the dashboard page it is on. */
const auditLink = z.object({ label: z.string(), href: z.string().nullable() });

const auditOutput = z.object({
  id: z.number(),
  actor: z.string(),
  actorType: z.string(),
  origin: z.string(),
  action: z.string(),
  targetType: z.string(),
  targetId: z.string().nullable(),
  target: auditLink.nullable(),
  deployment: auditLink.nullable(),
  /** The services a deployment action acted on, by name (`changes.serviceIds` resolved); null for a whole environment's. */
  services: z.array(auditLink).nullable(),
  changes: z.record(z.string(), z.unknown()).nullable(),
  ip: z.string().nullable(),
  at: z.string(),
});

const overviewOutput = z.object({
  projects: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      environments: z.array(
        z.object({
          id: z.string(),
          name: z.string(),
          mode: environmentMode,
          cluster: z.object({ id: z.string(), name: z.string() }),
          status: z.union([deploymentStatus, z.enum(["EMPTY", "NEVER_DEPLOYED"])]),
          /** When the latest deployment failed yet left some services live: how many of how many it deployed. */
          partlyDeployed: z.object({ deployed: z.number(), of: z.number() }).nullable(),
          /** Deployments of some of its services still on their way ("deleting html"): shown beside its status, which they leave as it is. */
          inProgress: z.array(z.object({ deploymentId: z.string(), action: deploymentAction, status: deploymentStatus, services: z.array(z.string()) })),
          /** The environment it was cloned from (a preview's blueprint), when that still exists. */
          clonedFrom: z.object({ id: z.string(), name: z.string(), projectName: z.string() }).nullable(),
          /** When the reaper deletes it, unless it is protected. */
          expiresAt: z.string().nullable(),
          /** The pull request a preview environment deploys. */
          preview: z.object({ number: z.number(), headBranch: z.string(), closedAt: z.string().nullable() }).nullable(),
          services: z.array(
            z.object({
              id: z.string(),
              name: z.string(),
              kind: serviceKind,
              url: z.string().nullable(),
              /** What every page shows as the service's status (server/overview/live-status.ts). */
              status: z.union([deploymentStatus, z.enum(["starting", "running", "crashed", "stopped", "idle", "sleeping", "NEVER_DEPLOYED"])]),
              runtime: serviceOutput.shape.runtime,
              lastDeployment: z
                .object({
                  id: z.string(),
                  status: deploymentStatus,
                  action: deploymentAction,
                  createdAt: z.string(),
                  finishedAt: z.string().nullable(),
                  commit: z.string().nullable(),
                })
                .nullable(),
            }),
          ),
        }),
      ),
    }),
  ),
});

export const organizationRouter = router({
  overview: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/overview", tags: ["organization"], summary: "Projects, environments and services with their status" } })
    .input(z.object({}))
    .output(overviewOutput)
    .query(({ ctx }) => organizationOverview(ctx.domain)),
  mine: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/organizations", tags: ["organization"], summary: "Organizations the caller belongs to" } })
    .input(z.object({}))
    .output(
      z.array(
        z.object({
          organizationId: z.string(),
          name: z.string(),
          role: roleSchema,
          /** When its OWNER asked to delete it: its environments are being deleted, then it goes. */
          deletingAt: z.string().nullable(),
        }),
      ),
    )
    .query(({ ctx }) => myOrganizations(ctx.domain)),
  whoami: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/whoami", tags: ["organization"], summary: "The caller's identity and role" } })
    .input(z.object({}))
    .output(z.object({ organizationId: z.string(), actor: z.string(), role: roleSchema }))
    .query(({ ctx }) => ({ organizationId: ctx.actor.organizationId, actor: ctx.actor.label, role: ctx.actor.role })),
  resolve: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/resolve", tags: ["organization"], summary: "Resolve project[/environment[/service]] to ids" } })
    .input(resolvePathInput)
    .output(z.object({ projectId: z.string(), environmentId: z.string().nullable(), serviceId: z.string().nullable() }))
    .query(({ ctx, input }) => resolvePath(ctx.domain, input.path)),
  tokens: procedure("ADMIN")
    .meta({ openapi: { method: "GET", path: "/tokens", tags: ["organization"], summary: "List API tokens" } })
    .input(z.object({}))
    .output(z.array(apiTokenOutput))
    .query(async ({ ctx }) => (await listApiTokens(ctx.domain)).map(toApiToken)),
  createToken: procedure("ADMIN")
    .meta({ openapi: { method: "POST", path: "/tokens", tags: ["organization"], summary: "Create an API token (shown once)" } })
    .input(createApiTokenInput)
    .output(z.object({ token: z.string(), apiToken: apiTokenOutput }))
    .mutation(async ({ ctx, input }) => {
      const { token, apiToken } = await createApiToken(ctx.domain, input);
      return { token, apiToken: toApiToken(apiToken) };
    }),
  revokeToken: procedure("ADMIN")
    .meta({ openapi: { method: "DELETE", path: "/tokens/{tokenId}", tags: ["organization"], summary: "Revoke an API token" } })
    .input(z.object({ tokenId: z.string().uuid() }))
    .output(apiTokenOutput)
    .mutation(async ({ ctx, input }) => toApiToken(await revokeApiToken(ctx.domain, input.tokenId))),
  audit: procedure("ADMIN")
    .meta({ openapi: { method: "GET", path: "/audit", tags: ["organization"], summary: "Audit events, newest first" } })
    .input(listAuditInput)
    .output(z.array(auditOutput))
    .query(async ({ ctx, input }) =>
      (await listAudit(ctx.domain, input)).map((row) => ({
        id: row.id,
        actor: row.actorLabel,
        actorType: row.actorType,
        origin: row.origin,
        action: row.action,
        targetType: row.targetType,
        targetId: row.targetId,
        target: row.target,
        deployment: row.deployment,
        services: row.services,
        changes: row.changes,
        ip: row.ip,
        at: row.at.toISOString(),
      })),
    ),
});
