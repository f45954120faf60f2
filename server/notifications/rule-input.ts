import { z } from "zod";
import { notificationEvents } from "./events";

/**
 * What a notification rule is made of, as the API takes it: imported by the dashboard's form
 * too (components/notifications), so it holds nothing but schemas.
 */

const httpUrl = z
  .string()
  .url()
  .max(2000)
  .refine((value) => /^https?:\/\//.test(value), "use an http or https URL");

/** SMTP settings of an email channel: the instance has no mail server of its own to fall back on. */
const smtpSettings = z.object({
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure: z.boolean().default(false),
  user: z.string().min(1).max(255).optional(),
  password: z.string().min(1).max(1024).optional(),
});

/** A channel's settings as given on creation; sealed whole, never returned. */
export const channelInput = z.discriminatedUnion("type", [
  z.object({ type: z.literal("slack"), url: httpUrl }),
  z.object({ type: z.literal("discord"), url: httpUrl }),
  z.object({ type: z.literal("webhook"), url: httpUrl }),
  z.object({
    type: z.literal("email"),
    smtp: smtpSettings,
    from: z.string().email().max(320),
    to: z.array(z.string().email().max(320)).min(1).max(20),
  }),
]);
export type ChannelInput = z.infer<typeof channelInput>;
/** What is sealed: the input, plus the signing secret Slipway generates for a generic webhook. */
export type ChannelConfig = ChannelInput & { secret?: string };

export const createRuleInput = z.object({
  projectId: z.string().uuid(),
  /** Only this environment of the project; every environment when omitted. */
  environmentId: z.string().uuid().optional(),
  name: z.string().trim().min(1).max(80),
  events: z.array(z.enum(notificationEvents)).min(1),
  channel: channelInput,
  enabled: z.boolean().default(true),
});
