import http from "node:http";
import https from "node:https";
import net from "node:net";
import nodemailer from "nodemailer";
import type { ChannelConfig } from "./rule-input";
import { SIGNATURE_HEADER, signatureHeader } from "./signature";
import { ALLOW_PRIVATE_SETTING, bareHost, deliveryAgent, publicAddressOf, type NotificationTargetPolicy } from "./target-address";

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

/**
 * One POST, through node:http rather than fetch: its agent is where the receiver's address is
 * checked as it resolves at connect time (target-address.ts). Redirects are not followed (one
 * could lead to a private address); the answer's first characters are kept for the log.
 */
function post(url: string, body: string, headers: Record<string, string>, policy: NotificationTargetPolicy): Promise<SendResult> {
  const target = new URL(url);
  const request = target.protocol === "https:" ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const outgoing = request(
      target,
      {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), "user-agent": "Slipway-Notifications", ...headers },
        agent: deliveryAgent(target, policy),
        timeout: TIMEOUT_MS,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        response.on("data", (chunk: Buffer) => {
          // Enough bytes for the excerpt's characters (at most 4 bytes each); the rest is drained.
          if (kept < EXCERPT_CHARS * 4) chunks.push(chunk);
          kept += chunk.length;
        });
        response.on("end", () => {
          const status = response.statusCode ?? 0;
          resolve({ ok: status >= 200 && status < 300, status, excerpt: Buffer.concat(chunks).toString("utf8").slice(0, EXCERPT_CHARS) });
        });
        response.on("error", reject);
      },
    );
    outgoing.on("timeout", () => outgoing.destroy(new Error(`the receiver did not answer within ${TIMEOUT_MS / 1000} s`)));
    outgoing.on("error", (error) =>
      reject(
        /is not allowed/.test(error.message)
          ? new Error(`${error.message} Notifications go to public addresses only, unless the instance allows private ones (${ALLOW_PRIVATE_SETTING})`)
          : error,
      ),
    );
    outgoing.end(body);
  });
}

/** Sends one attempt of a delivery; throws on a network or SMTP error (the caller records it). */
export async function sendToChannel(config: ChannelConfig, payload: DeliveryPayload, at: Date, policy: NotificationTargetPolicy): Promise<SendResult> {
  switch (config.type) {
    case "slack":
      return post(config.url, JSON.stringify(slackBody(payload)), {}, policy);
    case "discord":
      return post(config.url, JSON.stringify(discordBody(payload)), {}, policy);
    case "webhook": {
      const body = JSON.stringify(payload);
      return post(
        config.url,
        body,
        {
          [SIGNATURE_HEADER]: signatureHeader(config.secret ?? "", body, at),
          "Slipway-Event": payload.event,
          "Slipway-Delivery": payload.id,
        },
        policy,
      );
    }
    case "email": {
      // Connects to the address checked, not to what the name resolves to a moment later; the
      // name still verifies the server's certificate (nodemailer's own way to pin an address:
      // https://gist.github.com/andris9/a13d9b327ea81d620ea89926d2097921).
      const address = await publicAddressOf(config.smtp.host, policy);
      const transport = nodemailer.createTransport({
        host: address,
        ...(net.isIP(bareHost(config.smtp.host)) ? {} : { tls: { servername: config.smtp.host } }),
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
      } catch (error) {
        throw smtpError(error);
      } finally {
        transport.close();
      }
    }
  }
}

/** What a nodemailer error says of the server's answer (smtp-connection's _formatError). */
type SmtpFailure = Error & { code?: string; response?: string; responseCode?: number; command?: string };

/** What went wrong, by nodemailer's error code, when the server's own words are not kept. */
const SMTP_FAILURES: Record<string, string> = {
  EPROTOCOL: "the server did not answer as an SMTP server",
  EAUTH: "the SMTP server refused the login",
  EENVELOPE: "the SMTP server refused the sender or a recipient",
  EMESSAGE: "the SMTP server refused the message",
  ETLS: "the SMTP server's TLS failed",
  ECONNECTION: "the SMTP server closed the connection",
};

/**
 * The error the attempt log keeps. nodemailer appends what the server said to its message; that
 * is kept only when it is an SMTP reply to one of our commands ("535 bad credentials" helps whoever
 * set the channel up). What a server says on connecting, or anything that is not an SMTP reply,
 * is a greeting: another service's banner (an sshd, a database) tells whoever reads the log what
 * listens there, so only the failure's kind and reply code are kept.
 */
function smtpError(error: unknown): unknown {
  const failure = error as SmtpFailure;
  if (!(error instanceof Error) || typeof failure.response !== "string") return error;
  const isReply = /^[2-5]\d\d[ -]/.test(failure.response) && failure.command !== undefined && failure.command !== "CONN";
  if (isReply) return error;
  const what = SMTP_FAILURES[failure.code ?? ""] ?? "the SMTP server failed";
  const reply = failure.responseCode ? `reply ${failure.responseCode}` : null;
  const when = failure.command === "CONN" ? "on connecting" : failure.command ? `to ${failure.command}` : null;
  const detail = [reply, when].filter(Boolean).join(" ");
  return new Error(detail ? `${what} (${detail})` : what);
}
