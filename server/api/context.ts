import type { IncomingMessage } from "node:http";
import type { AuthConfig } from "@auth/core";
import { TRPCError } from "@trpc/server";
import type { Actor } from "../auth/actor";
import { sessionOf } from "../auth/sessions";
import type { Services } from "../context";
import { origins, type Origin } from "../db/schema";
import { isAppError } from "../errors";
import type { Logger } from "../logger";
import { authenticateApiToken } from "../tokens/api-tokens";
import { databaseUnavailableError, type ApiContext } from "./trpc";

/** Where a request says it comes from; the CLI sends `X-Slipway-Origin: CLI`. Machines default to API. */
function originOf(req: IncomingMessage): Origin {
  const claimed = String(req.headers["x-slipway-origin"] ?? "").toUpperCase();
  return (origins as readonly string[]).includes(claimed) && (claimed === "CLI" || claimed === "API" || claimed === "UI") ? (claimed as Origin) : "API";
}

/**
 * Builds the request's context from its credentials: an API token in `Authorization: Bearer`,
 * else a browser session cookie. A presented but invalid token is refused outright rather than
 * treated as anonymous, and counted (`onBadToken`: rate limited per address, server/auth/rate-limits.ts).
 */
export async function createRequestContext(
  services: Services,
  req: IncomingMessage,
  logger?: Logger,
  auth?: AuthConfig,
  onBadToken?: () => Promise<void>,
  signUpAttempt?: ApiContext["signUpAttempt"],
): Promise<ApiContext> {
  const header = req.headers.authorization;
  let actor: Actor | null = null;
  let sessionUserId: string | null = null;
  if (header?.startsWith("Bearer ")) {
    try {
      actor = await authenticateApiToken(services, header.slice("Bearer ".length).trim(), originOf(req), req.socket.remoteAddress);
    } catch (error) {
      if (isAppError(error)) {
        await onBadToken?.();
        throw new TRPCError({ code: "UNAUTHORIZED", message: error.message });
      }
      throw databaseUnavailableError(error) ?? error;
    }
  } else if (auth) {
    const session = await sessionOf(services, auth, req).catch((error: unknown) => {
      throw databaseUnavailableError(error) ?? error;
    });
    actor = session?.actor ?? null;
    sessionUserId = session?.userId ?? null;
  }
  return { services, actor, sessionUserId, ip: req.socket.remoteAddress, signUpAttempt, logger };
}
