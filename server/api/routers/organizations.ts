import { z } from "zod";
import {
  createOrganizationForUser,
  createOrganizationInput,
  deleteOrganization,
  deleteOrganizationInput,
  renameOrganization,
  renameOrganizationInput,
  transferOrganization,
  transferOrganizationInput,
} from "../../organizations/organizations";
import { roleSchema } from "../outputs";
import { procedure, router, userProcedure } from "../trpc";

/**
 * Organizations themselves: any signed-in user creates one (and owns it); its OWNERs rename,
 * hand over and delete it. Rename, transfer and delete act on the caller's organization: the
 * one the dashboard's switcher chose, or the API token's.
 */
export const organizationsRouter = router({
  create: userProcedure()
    .meta({ openapi: { method: "POST", path: "/organizations", tags: ["organization"], summary: "Create an organization; the caller is its OWNER" } })
    .input(createOrganizationInput)
    .output(z.object({ organization: z.object({ id: z.string(), name: z.string(), role: roleSchema }), token: z.string().nullable() }))
    .mutation(({ ctx, input }) => createOrganizationForUser(ctx.account, input)),
  rename: procedure("OWNER")
    .meta({ openapi: { method: "PATCH", path: "/organization", tags: ["organization"], summary: "Rename the organization" } })
    .input(renameOrganizationInput)
    .output(z.object({ id: z.string(), name: z.string() }))
    .mutation(async ({ ctx, input }) => {
      const { id, name } = await renameOrganization(ctx.domain, input);
      return { id, name };
    }),
  transfer: procedure("OWNER")
    .meta({
      openapi: {
        method: "POST",
        path: "/organization/transfer",
        tags: ["organization"],
        summary: "Make another member an OWNER; the caller becomes an ADMIN",
      },
    })
    .input(transferOrganizationInput)
    .output(z.object({ owner: z.string(), yourRole: roleSchema }))
    .mutation(({ ctx, input }) => transferOrganization(ctx.domain, input)),
  delete: procedure("OWNER")
    .meta({
      openapi: {
        method: "DELETE",
        path: "/organization",
        tags: ["organization"],
        summary: "Delete the organization: DELETE deployments remove its environments, then it goes",
      },
    })
    .input(deleteOrganizationInput)
    .output(z.object({ status: z.enum(["DELETING", "DELETED"]), deploymentIds: z.array(z.string()) }))
    .mutation(({ ctx, input }) => deleteOrganization(ctx.domain, input)),
});
