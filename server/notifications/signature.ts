import { createHmac } from "node:crypto";

/**
 * The generic webhook's signature header, after Stripe's: `Slipway-Signature: t=<unix seconds>,
 * v1=<hex HMAC-SHA256 of "<t>.<body>" with the rule's secret>`. The timestamp is signed, so a
 * receiver that refuses old timestamps (5 minutes is the documented tolerance) refuses replays.
 */
export const SIGNATURE_HEADER = "Slipway-Signature";

export function signatureHeader(secret: string, body: string, at: Date): string {
  const t = Math.floor(at.getTime() / 1000);
  const v1 = createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
  return `t=${t},v1=${v1}`;
}
