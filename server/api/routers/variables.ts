import { z } from "zod";
import {
  effectiveVariables,
  importVariables,
  importVariablesInput,
  listVariables,
  setVariable,
  setVariableInput,
  unsetVariable,
  unsetVariableInput,
  variableTarget,
} from "../../variables/variables";
import { jobRefOutput, variableOutput } from "../outputs";
import { variableScopes } from "../../db/schema";
import { procedure, router } from "../trpc";

export const variablesRouter = router({
  list: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/variables",
        tags: ["variables"],
        summary: "List variables of a scope (secret values are never returned; an environment's include what its lifecycle jobs output)",
      },
    })
    .input(variableTarget)
    .output(z.array(variableOutput))
    .query(async ({ ctx, input }) =>
      (await listVariables(ctx.domain, input)).map(({ key, scope, targetId, secret, value, job }) => ({ key, scope, targetId, secret, value, job })),
    ),
  set: procedure("DEVELOPER")
    .meta({ openapi: { method: "PUT", path: "/variables", tags: ["variables"], summary: "Set a variable (secrets are write-only)" } })
    .input(setVariableInput)
    .output(variableOutput)
    .mutation(async ({ ctx, input }) => {
      const saved = await setVariable(ctx.domain, input);
      return { ...saved, value: saved.secret ? null : input.value };
    }),
  unset: procedure("DEVELOPER")
    .meta({ openapi: { method: "DELETE", path: "/variables", tags: ["variables"], summary: "Remove a variable" } })
    .input(unsetVariableInput)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await unsetVariable(ctx.domain, input);
      return { ok: true as const };
    }),
  effective: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/services/{serviceId}/variables",
        tags: ["variables"],
        summary: "What a service receives, with each value's source (JOB: a lifecycle job's output, its value kept by the engine)",
      },
    })
    .input(z.object({ serviceId: z.string().uuid() }))
    .output(
      z.array(
        z.object({
          key: z.string(),
          value: z.string().nullable(),
          secret: z.boolean(),
          source: z.enum([...variableScopes, "BUILT_IN", "JOB"]),
          overrides: z.array(z.enum(variableScopes)),
          job: jobRefOutput.nullable(),
        }),
      ),
    )
    .query(({ ctx, input }) => effectiveVariables(ctx.domain, input.serviceId)),
  import: procedure("DEVELOPER")
    .meta({ openapi: { method: "POST", path: "/variables/import", tags: ["variables"], summary: "Import a .env file at one scope (all or nothing)" } })
    .input(importVariablesInput)
    .output(z.object({ imported: z.number(), keys: z.array(z.string()) }))
    .mutation(({ ctx, input }) => importVariables(ctx.domain, input)),
});
