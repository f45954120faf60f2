import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { accountOf, newAccountInput, signUp } from "../../auth/accounts";
import { signOutEverywhere } from "../../auth/sign-out-everywhere";
import { signupModes } from "../../db/schema";
import { instanceSettingsInput, readInstanceSettings, updateInstanceSettings } from "../../instance/settings";
import { publicProcedure, router, userProcedure } from "../trpc";

const settingsOutput = z.object({ signup: z.enum(signupModes) });

/** The instance above organizations: its settings, accounts and sign-up. */
export const instanceRouter = router({
  // Public: the sign-in page offers to create an account only where anyone may.
  settings: publicProcedure
    .meta({ openapi: { method: "GET", path: "/instance", tags: ["instance"], summary: "The instance's settings (sign-up open or by invitation)" } })
    .input(z.object({}))
    .output(settingsOutput)
    .query(({ ctx }) => readInstanceSettings(ctx.services.db)),
  updateSettings: userProcedure({ instanceAdmin: true })
    .meta({ openapi: { method: "PATCH", path: "/instance", tags: ["instance"], summary: "Change the instance's settings (instance admins)" } })
    .input(instanceSettingsInput)
    .output(settingsOutput)
    .mutation(({ ctx, input }) => {
      const { user, origin, ip } = ctx.account;
      const admin = { type: "user" as const, id: user.id, label: user.email, organizationId: ctx.actor?.organizationId ?? null, origin, ip, userId: user.id };
      return updateInstanceSettings(ctx.services.db, admin, input);
    }),
  account: userProcedure()
    .meta({ openapi: { method: "GET", path: "/account", tags: ["instance"], summary: "The signed-in user, and how many organizations they belong to" } })
    .input(z.object({}))
    .output(z.object({ id: z.string(), email: z.string(), name: z.string(), instanceAdmin: z.boolean(), organizations: z.number() }))
    .query(({ ctx }) => accountOf(ctx.services, ctx.account.user)),
  signOutEverywhere: userProcedure()
    .meta({
      openapi: {
        method: "POST",
        path: "/account/sign-out-everywhere",
        tags: ["instance"],
        summary: "End every browser session of the signed-in user, on every device, this one included (API tokens stay)",
      },
    })
    .input(z.object({}))
    .output(z.object({ endedAt: z.string() }))
    .mutation(async ({ ctx }) => ({ endedAt: (await signOutEverywhere(ctx.services, ctx.account)).endedAt.toISOString() })),
  signUp: publicProcedure
    .meta({ openapi: { method: "POST", path: "/signup", tags: ["instance"], summary: "Create an account, where the instance lets anyone sign up" } })
    .input(newAccountInput)
    .output(z.object({ id: z.string(), email: z.string(), name: z.string() }))
    .mutation(async ({ ctx, input }) => {
      const refused = await ctx.signUpAttempt?.();
      if (refused)
        throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: `Too many sign-ups from this address: try again in ${refused.retryAfterSeconds} seconds` });
      return signUp(ctx.services, input, ctx.ip);
    }),
});
