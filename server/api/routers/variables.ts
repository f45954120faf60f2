import { z } from "zod";
import { listVariables, setVariable, setVariableInput, unsetVariable, unsetVariableInput, variableTarget } from "../../variables/variables";
import { variableOutput } from "../outputs";
import { procedure, router } from "../trpc";

export const variablesRouter = router({
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/variables", tags: ["variables"], summary: "List variables of a scope (secret values are never returned)" } })
    .input(variableTarget)
    .output(z.array(variableOutput))
    .query(async ({ ctx, input }) =>
      (await listVariables(ctx.domain, input)).map(({ key, scope, targetId, secret, value }) => ({ key, scope, targetId, secret, value })),
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
});
