import { z } from "zod";
import { deliveryStatuses, gitProviders } from "../../db/schema";
import {
  connectInput,
  connectProvider,
  deleteConnection,
  describeConnection,
  listConnections,
  rotateSecret,
  updateConnection,
  updateConnectionInput,
} from "../../webhooks/connections";
import { getDelivery, listDeliveries, listDeliveriesInput, redeliver } from "../../webhooks/deliveries";
import { listPreviews, setPreviewBlueprint, setPreviewBlueprintInput } from "../../webhooks/previews";
import { summarizeDelivery } from "../../webhooks/summary";
import { procedure, router } from "../trpc";

const connectionOutput = z.object({
  id: z.string(),
  provider: z.enum(gitProviders),
  name: z.string(),
  apiBaseUrl: z.string().nullable(),
  hasApiToken: z.boolean(),
  /** Where the provider sends deliveries: `<public URL>/api/hooks/<id>`. */
  webhookUrl: z.string(),
  rejectedDeliveries: z.number(),
  lastRejectedAt: z.string().nullable(),
  createdAt: z.string(),
});
/** The webhook secret: returned by connect and rotateSecret only, never stored in plaintext. */
const withSecret = z.object({ connection: connectionOutput, secret: z.string() });

const deliveryOutput = z.object({
  id: z.string(),
  seq: z.number(),
  deliveryId: z.string(),
  event: z.string(),
  status: z.enum(deliveryStatuses),
  outcome: z.record(z.string(), z.unknown()).nullable(),
  error: z.string().nullable(),
  /** What the delivery did, in one line. */
  summary: z.string(),
  attempts: z.number(),
  receivedAt: z.string(),
  processedAt: z.string().nullable(),
});
type DeliveryRow = Awaited<ReturnType<typeof listDeliveries>>[number];
const toDelivery = (row: DeliveryRow) => ({
  ...row,
  summary: summarizeDelivery(row),
  receivedAt: row.receivedAt.toISOString(),
  processedAt: row.processedAt?.toISOString() ?? null,
});

const previewOutput = z.object({
  id: z.string(),
  blueprintEnvironmentId: z.string(),
  environmentId: z.string(),
  environmentName: z.string(),
  repository: z.string(),
  number: z.number(),
  headBranch: z.string(),
  headCommit: z.string(),
  expiresAt: z.string().nullable(),
  closedAt: z.string().nullable(),
  createdAt: z.string(),
});

/** Git integration: provider connections, their webhook deliveries, and preview environments. */
export const webhooksRouter = router({
  connect: procedure("ADMIN")
    .meta({ openapi: { method: "POST", path: "/git/connections", tags: ["git"], summary: "Connect a git provider; its webhook secret is shown once" } })
    .input(connectInput)
    .output(withSecret)
    .mutation(async ({ ctx, input }) => {
      const { connection, secret } = await connectProvider(ctx.domain, input);
      return { connection: describeConnection(ctx.domain, connection), secret };
    }),
  list: procedure("ADMIN")
    .meta({ openapi: { method: "GET", path: "/git/connections", tags: ["git"], summary: "List git provider connections" } })
    .input(z.object({}))
    .output(z.array(connectionOutput))
    .query(async ({ ctx }) => (await listConnections(ctx.domain)).map((row) => describeConnection(ctx.domain, row))),
  update: procedure("ADMIN")
    .meta({ openapi: { method: "PATCH", path: "/git/connections/{connectionId}", tags: ["git"], summary: "Change a connection's API base URL or token" } })
    .input(updateConnectionInput)
    .output(connectionOutput)
    .mutation(async ({ ctx, input }) => describeConnection(ctx.domain, await updateConnection(ctx.domain, input))),
  rotateSecret: procedure("ADMIN")
    .meta({ openapi: { method: "POST", path: "/git/connections/{connectionId}/secret", tags: ["git"], summary: "Issue a new webhook secret (shown once)" } })
    .input(z.object({ connectionId: z.string().uuid() }))
    .output(withSecret)
    .mutation(async ({ ctx, input }) => {
      const { connection, secret } = await rotateSecret(ctx.domain, input.connectionId);
      return { connection: describeConnection(ctx.domain, connection), secret };
    }),
  delete: procedure("ADMIN")
    .meta({ openapi: { method: "DELETE", path: "/git/connections/{connectionId}", tags: ["git"], summary: "Disconnect a git provider" } })
    .input(z.object({ connectionId: z.string().uuid() }))
    .output(connectionOutput)
    .mutation(async ({ ctx, input }) => describeConnection(ctx.domain, await deleteConnection(ctx.domain, input.connectionId))),
  deliveries: procedure("ADMIN")
    .meta({
      openapi: { method: "GET", path: "/git/connections/{connectionId}/deliveries", tags: ["git"], summary: "A connection's webhook deliveries, newest first" },
    })
    .input(listDeliveriesInput)
    .output(z.array(deliveryOutput))
    .query(async ({ ctx, input }) => (await listDeliveries(ctx.domain, input)).map(toDelivery)),
  delivery: procedure("ADMIN")
    .meta({ openapi: { method: "GET", path: "/git/deliveries/{deliveryId}", tags: ["git"], summary: "One delivery with its headers and payload" } })
    .input(z.object({ deliveryId: z.string().uuid() }))
    .output(deliveryOutput.extend({ connectionId: z.string(), headers: z.record(z.string(), z.string()), payload: z.string() }))
    .query(async ({ ctx, input }) => {
      const row = await getDelivery(ctx.domain, input.deliveryId);
      return { ...toDelivery(row), connectionId: row.connectionId, headers: row.headers, payload: row.payload };
    }),
  redeliver: procedure("ADMIN")
    .meta({ openapi: { method: "POST", path: "/git/deliveries/{deliveryId}/redeliver", tags: ["git"], summary: "Process a stored delivery again" } })
    .input(z.object({ deliveryId: z.string().uuid() }))
    .output(deliveryOutput)
    .mutation(async ({ ctx, input }) => toDelivery(await redeliver(ctx.domain, input.deliveryId))),
  setPreviewBlueprint: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "PUT",
        path: "/environments/{environmentId}/preview-blueprint",
        tags: ["git"],
        summary: "Make an environment the blueprint of pull request previews, or stop",
      },
    })
    .input(setPreviewBlueprintInput)
    .output(z.object({ environmentId: z.string(), enabled: z.boolean(), lifetimeSeconds: z.number().nullable() }))
    .mutation(async ({ ctx, input }) => setPreviewBlueprint(ctx.domain, input)),
  previews: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/git/previews", tags: ["git"], summary: "Preview environments, optionally of one blueprint" } })
    .input(z.object({ environmentId: z.string().uuid().optional() }))
    .output(z.array(previewOutput))
    .query(async ({ ctx, input }) =>
      (await listPreviews(ctx.domain, input)).map(({ preview, environment }) => ({
        id: preview.id,
        blueprintEnvironmentId: preview.blueprintEnvironmentId,
        environmentId: preview.environmentId,
        environmentName: environment.name,
        repository: preview.repository,
        number: preview.number,
        headBranch: preview.headBranch,
        headCommit: preview.headCommit,
        expiresAt: environment.expiresAt?.toISOString() ?? null,
        closedAt: preview.closedAt?.toISOString() ?? null,
        createdAt: preview.createdAt.toISOString(),
      })),
    ),
});
