import { z } from "zod";
import { serviceKind } from "../../../engine/protocol/snapshot";
import {
  addStage,
  addStageInput,
  listStages,
  moveStage,
  moveStageInput,
  removeStage,
  removeStageInput,
  setServiceStage,
  setServiceStageInput,
} from "../../environments/stages";
import { procedure, router } from "../trpc";

/** An environment's deployment stages (issue 16), `default` first: server/environments/stages.ts. */
const stagesOutput = z.array(
  z.object({
    /** Null for `default`, the stage of services placed in no other. */
    id: z.string().nullable(),
    name: z.string(),
    /** 0 for `default`, then 1, 2, … in the order deployments run them. */
    position: z.number(),
    services: z.array(z.object({ id: z.string(), name: z.string(), kind: serviceKind })),
  }),
);
const stageOutput = z.object({ id: z.string(), environmentId: z.string(), name: z.string(), position: z.number() });
const toStage = ({ id, environmentId, name, position }: { id: string; environmentId: string; name: string; position: number }) => ({
  id,
  environmentId,
  name,
  position,
});

export const stagesRouter = router({
  list: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/environments/{environmentId}/stages",
        tags: ["stages"],
        summary: "An environment's deployment stages in order, each with its services",
      },
    })
    .input(z.object({ environmentId: z.string().uuid() }))
    .output(stagesOutput)
    .query(({ ctx, input }) => listStages(ctx.domain, input.environmentId)),
  add: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "POST",
        path: "/environments/{environmentId}/stages",
        tags: ["stages"],
        summary: "Add a deployment stage (last unless a position is given)",
      },
    })
    .input(addStageInput)
    .output(stageOutput)
    .mutation(async ({ ctx, input }) => toStage(await addStage(ctx.domain, input))),
  move: procedure("DEVELOPER")
    .meta({ openapi: { method: "PATCH", path: "/stages/{stageId}", tags: ["stages"], summary: "Move a deployment stage to another position" } })
    .input(moveStageInput)
    .output(stageOutput)
    .mutation(async ({ ctx, input }) => toStage(await moveStage(ctx.domain, input))),
  remove: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "DELETE",
        path: "/stages/{stageId}",
        tags: ["stages"],
        summary: "Remove a deployment stage: its services go back to the default stage",
      },
    })
    .input(removeStageInput)
    .output(stageOutput.extend({ services: z.array(z.string()) }))
    .mutation(async ({ ctx, input }) => {
      const removed = await removeStage(ctx.domain, input);
      return { ...toStage(removed), services: removed.services };
    }),
  setService: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "PUT",
        path: "/services/{serviceId}/stage",
        tags: ["stages"],
        summary: "Put a service in a deployment stage of its environment (default: in none)",
      },
    })
    .input(setServiceStageInput)
    .output(z.object({ serviceId: z.string(), stage: z.string() }))
    .mutation(({ ctx, input }) => setServiceStage(ctx.domain, input)),
});
