import nodemailer from "nodemailer";
import type { ChannelConfig } from "./rules";
import { SIGNATURE_HEADER, signatureHeader } from "./signature";

/** How much of a receiver's answer the delivery log keeps. */
const EXCERPT_CHARS = 1_000;
const TIMEOUT_MS = 10_000;

export type DeliveryPayload = Record<string, unknown> & { id: string; event: string; text: string };

/** A receiver's answer: `ok` when it accepted the delivery (2xx, or the SMTP server queued the message). */
export type SendResult = { ok: boolean; status: number | null; excerpt: string | null };

/** Slack incoming webhooks (and Mattermost, Rocket.Chat …): `text` as the fallback, one section block. */
export function slackBody(payload: DeliveryPayload) {
  return { text: payload.text, blocks: [{ type: "section", text: { type: "mrkdwn", text: payload.text } }] };
}

/** Discord webhooks: `content` plus an embed naming the event. */
export function discordBody(payload: DeliveryPayload) {
  return { content: payload.text, embeds: [{ title: payload.event, description: payload.text, timestamp: payload.occurredAt }] };
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<SendResult> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "user-agent": "Slipway-Notifications", ...headers },
    body,
    redirect: "manual",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await response.text();
  return { ok: response.ok, status: response.status, excerpt: text.slice(0, EXCERPT_CHARS) };
}

/** Sends one attempt of a delivery; throws on a network or SMTP error (the caller records it). */
export async function sendToChannel(config: ChannelConfig, payload: DeliveryPayload, at: Date): Promise<SendResult> {
  switch (config.type) {
    case "slack":
      return post(config.url, JSON.stringify(slackBody(payload)), {});
    case "discord":
      return post(config.url, JSON.stringify(discordBody(payload)), {});
    case "webhook": {
      const body = JSON.stringify(payload);
      return post(config.url, body, {
        [SIGNATURE_HEADER]: signatureHeader(config.secret ?? "", body, at),
        "Slipway-Event": payload.event,
        "Slipway-Delivery": payload.id,
      });
    }
    case "email": {
      const transport = nodemailer.createTransport({
        host: config.smtp.host,
        port: config.smtp.port,
        secure: config.smtp.secure,
        ...(config.smtp.user ? { auth: { user: config.smtp.user, pass: config.smtp.password ?? "" } } : {}),
        connectionTimeout: TIMEOUT_MS,
        greetingTimeout: TIMEOUT_MS,
        socketTimeout: TIMEOUT_MS,
      });
      try {
        const info = await transport.sendMail({
          from: config.from,
          to: config.to,
          subject: `[Slipway] ${payload.text}`.slice(0, 200),
          text: `${payload.text}\n\nEvent: ${payload.event}\nDelivery: ${payload.id}\n`,
        });
        return { ok: info.rejected.length === 0, status: null, excerpt: String(info.response).slice(0, EXCERPT_CHARS) };
      } finally {
        transport.close();
      }
    }
  }
}
