import { z } from "zod";
import { notificationChannels, notificationDeliveryStatuses } from "../../db/schema";
import { notificationEvents } from "../../notifications/events";
import { createRuleInput } from "../../notifications/rule-input";
import {
  createRule,
  deleteRule,
  describeRule,
  listRuleDeliveries,
  listRules,
  sendTestNotification,
  updateRule,
  updateRuleInput,
} from "../../notifications/rules";
import { procedure, router } from "../trpc";

const ruleOutput = z.object({
  id: z.string(),
  projectId: z.string(),
  environmentId: z.string().nullable(),
  name: z.string(),
  events: z.array(z.string()),
  channel: z.enum(notificationChannels),
  /** The receiver, masked: a URL's host, or an email channel's recipients and server. */
  target: z.string(),
  enabled: z.boolean(),
  createdAt: z.string(),
});

const attemptOutput = z.object({
  attempt: z.number(),
  responseStatus: z.number().nullable(),
  responseExcerpt: z.string().nullable(),
  durationMs: z.number(),
  error: z.string().nullable(),
  at: z.string(),
});

const deliveryOutput = z.object({
  id: z.string(),
  event: z.string(),
  status: z.enum(notificationDeliveryStatuses),
  attempts: z.array(attemptOutput),
  createdAt: z.string(),
  deliveredAt: z.string().nullable(),
});

/** Notification rules (issue 16, part 4): which events of a project go to which channel, and their delivery log. */
export const notificationsRouter = router({
  events: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/notifications/events", tags: ["notifications"], summary: "The events a rule can follow" } })
    .input(z.object({}))
    .output(z.array(z.enum(notificationEvents)))
    .query(() => [...notificationEvents]),
  create: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "POST",
        path: "/notifications/rules",
        tags: ["notifications"],
        summary: "Add a rule; a generic webhook's signing secret is shown once",
      },
    })
    .input(createRuleInput)
    .output(z.object({ rule: ruleOutput, secret: z.string().nullable() }))
    .mutation(async ({ ctx, input }) => {
      const { rule, secret } = await createRule(ctx.domain, input);
      return { rule: describeRule(rule), secret };
    }),
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/notifications/rules", tags: ["notifications"], summary: "Notification rules, optionally of one project" } })
    .input(z.object({ projectId: z.string().uuid().optional() }))
    .output(z.array(ruleOutput))
    .query(async ({ ctx, input }) => (await listRules(ctx.domain, input)).map(describeRule)),
  update: procedure("DEVELOPER")
    .meta({
      openapi: { method: "PATCH", path: "/notifications/rules/{ruleId}", tags: ["notifications"], summary: "Change a rule's events or enable or disable it" },
    })
    .input(updateRuleInput)
    .output(ruleOutput)
    .mutation(async ({ ctx, input }) => describeRule(await updateRule(ctx.domain, input))),
  delete: procedure("DEVELOPER")
    .meta({ openapi: { method: "DELETE", path: "/notifications/rules/{ruleId}", tags: ["notifications"], summary: "Remove a rule and its delivery log" } })
    .input(z.object({ ruleId: z.string().uuid() }))
    .output(ruleOutput)
    .mutation(async ({ ctx, input }) => describeRule(await deleteRule(ctx.domain, input.ruleId))),
  test: procedure("DEVELOPER")
    .meta({
      openapi: { method: "POST", path: "/notifications/rules/{ruleId}/test", tags: ["notifications"], summary: "Send a test delivery to the rule's channel" },
    })
    .input(z.object({ ruleId: z.string().uuid() }))
    .output(z.object({ deliveryId: z.string() }))
    .mutation(async ({ ctx, input }) => sendTestNotification(ctx.domain, input.ruleId)),
  deliveries: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/notifications/rules/{ruleId}/deliveries",
        tags: ["notifications"],
        summary: "A rule's deliveries, newest first, with each attempt",
      },
    })
    .input(z.object({ ruleId: z.string().uuid(), limit: z.number().int().min(1).max(200).default(50) }))
    .output(z.array(deliveryOutput))
    .query(async ({ ctx, input }) =>
      (await listRuleDeliveries(ctx.domain, input)).map((row) => ({
        id: row.id,
        event: row.event,
        status: row.status,
        attempts: row.attemptLog.map((attempt) => ({ ...attempt, at: attempt.at.toISOString() })),
        createdAt: row.createdAt.toISOString(),
        deliveredAt: row.deliveredAt?.toISOString() ?? null,
      })),
    ),
});
