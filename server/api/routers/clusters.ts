import { z } from "zod";
import {
  createCluster,
  createClusterInput,
  listClusters,
  revokeEngineToken,
  rotateEngineToken,
  updateCluster,
  updateClusterInput,
} from "../../clusters/clusters";
import { clusterOutput, toCluster } from "../outputs";
import { procedure, router } from "../trpc";

/** An engine heartbeats every few seconds; three missed beats and the cluster shows disconnected. */
const HEARTBEAT_WINDOW_MS = 20_000;

const withToken = z.object({ cluster: clusterOutput, engineToken: z.string() });

export const clustersRouter = router({
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/clusters", tags: ["clusters"], summary: "List clusters and their engines' state" } })
    .input(z.object({}))
    .output(z.array(clusterOutput))
    .query(async ({ ctx }) => (await listClusters(ctx.domain)).map((c) => toCluster(c, ctx.domain.now(), HEARTBEAT_WINDOW_MS))),
  create: procedure("ADMIN")
    .meta({ openapi: { method: "POST", path: "/clusters", tags: ["clusters"], summary: "Register a cluster; its engine token is shown once" } })
    .input(createClusterInput)
    .output(withToken)
    .mutation(async ({ ctx, input }) => {
      const { cluster, engineToken } = await createCluster(ctx.domain, input);
      return { cluster: toCluster(cluster, ctx.domain.now(), HEARTBEAT_WINDOW_MS), engineToken };
    }),
  update: procedure("ADMIN")
    .meta({
      openapi: {
        method: "PATCH",
        path: "/clusters/{clusterId}",
        tags: ["clusters"],
        summary:
          "Change a cluster's settings: whether services may be built from repositories on its engine's host, trust, loopback isolation, and where a kubernetes cluster builds images",
      },
    })
    .input(updateClusterInput)
    .output(clusterOutput)
    .mutation(async ({ ctx, input }) => toCluster(await updateCluster(ctx.domain, input), ctx.domain.now(), HEARTBEAT_WINDOW_MS)),
  rotateToken: procedure("ADMIN")
    .meta({ openapi: { method: "POST", path: "/clusters/{clusterId}/token", tags: ["clusters"], summary: "Issue a new engine token" } })
    .input(z.object({ clusterId: z.string().uuid() }))
    .output(withToken)
    .mutation(async ({ ctx, input }) => {
      const { cluster, engineToken } = await rotateEngineToken(ctx.domain, input.clusterId);
      return { cluster: toCluster(cluster, ctx.domain.now(), HEARTBEAT_WINDOW_MS), engineToken };
    }),
  revokeToken: procedure("ADMIN")
    .meta({ openapi: { method: "DELETE", path: "/clusters/{clusterId}/token", tags: ["clusters"], summary: "Revoke the engine token" } })
    .input(z.object({ clusterId: z.string().uuid() }))
    .output(clusterOutput)
    .mutation(async ({ ctx, input }) =>
      toCluster({ ...(await revokeEngineToken(ctx.domain, input.clusterId)), engineTokenHash: null }, ctx.domain.now(), HEARTBEAT_WINDOW_MS),
    ),
});
