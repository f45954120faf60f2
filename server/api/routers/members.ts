import { z } from "zod";
import { acceptInvite, acceptInviteInput, previewInvite, previewInviteInput } from "../../members/accept-invite";
import {
  changeMemberRole,
  changeRoleInput,
  inviteMember,
  inviteMemberInput,
  listMembers,
  listPendingInvites,
  removeMember,
  revokeInvite,
} from "../../members/members";
import { roleSchema } from "../outputs";
import { procedure, publicProcedure, router } from "../trpc";

const memberOutput = z.object({ userId: z.string(), email: z.string(), name: z.string(), role: roleSchema, joinedAt: z.string() });
const inviteOutput = z.object({ id: z.string(), role: roleSchema, expiresAt: z.string(), createdAt: z.string() });
const toInvite = (row: { id: string; role: z.infer<typeof roleSchema>; expiresAt: Date; createdAt: Date }) => ({
  id: row.id,
  role: row.role,
  expiresAt: row.expiresAt.toISOString(),
  createdAt: row.createdAt.toISOString(),
});

export const membersRouter = router({
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/members", tags: ["members"], summary: "Members of the organization" } })
    .input(z.object({}))
    .output(z.array(memberOutput))
    .query(async ({ ctx }) => (await listMembers(ctx.domain)).map((m) => ({ ...m, joinedAt: m.joinedAt.toISOString() }))),
  invite: procedure("ADMIN")
    .meta({ openapi: { method: "POST", path: "/members/invites", tags: ["members"], summary: "Create an invitation link (shown once)" } })
    .input(inviteMemberInput)
    .output(z.object({ url: z.string(), invite: inviteOutput }))
    .mutation(async ({ ctx, input }) => {
      const { url, invite } = await inviteMember(ctx.domain, input);
      return { url, invite: toInvite(invite) };
    }),
  invites: procedure("ADMIN")
    .meta({ openapi: { method: "GET", path: "/members/invites", tags: ["members"], summary: "Pending invitations" } })
    .input(z.object({}))
    .output(z.array(inviteOutput))
    .query(async ({ ctx }) => (await listPendingInvites(ctx.domain)).map(toInvite)),
  revokeInvite: procedure("ADMIN")
    .meta({ openapi: { method: "DELETE", path: "/members/invites/{inviteId}", tags: ["members"], summary: "Revoke an invitation" } })
    .input(z.object({ inviteId: z.string().uuid() }))
    .output(inviteOutput)
    .mutation(async ({ ctx, input }) => toInvite(await revokeInvite(ctx.domain, input.inviteId))),
  changeRole: procedure("ADMIN")
    .meta({ openapi: { method: "PATCH", path: "/members/{userId}", tags: ["members"], summary: "Change a member's role" } })
    .input(changeRoleInput)
    .output(z.object({ userId: z.string(), role: roleSchema }))
    .mutation(({ ctx, input }) => changeMemberRole(ctx.domain, input)),
  remove: procedure("ADMIN")
    .meta({ openapi: { method: "DELETE", path: "/members/{userId}", tags: ["members"], summary: "Remove a member" } })
    .input(z.object({ userId: z.string().uuid() }))
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await removeMember(ctx.domain, input.userId);
      return { ok: true as const };
    }),
});

/** Opened from an invitation link: before the visitor belongs to the organization. */
export const invitesRouter = router({
  preview: publicProcedure
    .input(previewInviteInput)
    .output(z.object({ organizationName: z.string(), role: roleSchema, expiresAt: z.string() }))
    .query(async ({ ctx, input }) => {
      const invite = await previewInvite(ctx.services, input.token);
      return { ...invite, expiresAt: invite.expiresAt.toISOString() };
    }),
  accept: publicProcedure
    .input(acceptInviteInput)
    .output(z.object({ organizationId: z.string(), organizationName: z.string(), role: roleSchema }))
    .mutation(({ ctx, input }) => acceptInvite(ctx.services, ctx.actor, input)),
});
