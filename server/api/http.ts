import type { IncomingMessage, ServerResponse } from "node:http";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { generateOpenApiDocument } from "trpc-to-openapi";
import type { AuthConfig } from "@auth/core";
import { fromOwnOrigin, isCookieAuthenticated } from "../auth/origin";
import { clientAddress, type AuthLimits } from "../auth/rate-limits";
import { AUTH_BASE_PATH, handleAuthRequest, renewSessionCookie } from "../auth/sessions";
import type { Services } from "../context";
import type { Logger } from "../logger";
import { MAX_BATCH_CALLS } from "./batch-limit";
import { createRequestContext } from "./context";
import { strictSearchParams } from "./query-string";
import { createRestHandler } from "./rest";
import { appRouter } from "./root";

const REST_PREFIX = "/api/v1";
const MAX_BODY_BYTES = 1024 * 1024;
/** tRPC's own message says neither the limit nor what to do; it is the only batch-size refusal. */
const TRPC_BATCH_TOO_LARGE = "Batch call exceeds maximum size";
/** Requests that change nothing: the only ones a session cookie may make from another origin (issue 13; server/auth/origin.ts). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const CROSS_ORIGIN_REFUSED = "Cross-origin request refused: a signed-in browser may change things only from the dashboard's own pages";

/**
 * The API over HTTP: tRPC at /api/trpc for the dashboard, the same procedures as REST at
 * /api/v1 for the CLI and scripts, and the OpenAPI document generated from them. Returns
 * false for paths it does not serve, so the caller hands them to Next.js.
 */
export function createApiHandler(
  services: Services,
  options: { publicUrl: string; logger?: Logger; auth?: AuthConfig; limits?: AuthLimits; trustProxy?: boolean },
) {
  // Without an auth configuration (tests of the API alone) there are no browser sessions, only API tokens.
  const { auth, limits } = options;
  const addressOf = (req: IncomingMessage) => clientAddress(req, options.trustProxy ?? false);
  const onBadToken = (req: IncomingMessage) => (limits ? () => limits.tokenFailed(addressOf(req)) : undefined);
  const signUpAttempt = (req: IncomingMessage) => (limits ? () => limits.signUpAttempt(addressOf(req)) : undefined);
  // The tRPC adapter wraps the request in a fetch Request; the response object passes through
  // unchanged, so it leads back to the Node request with its headers and socket.
  const requests = new WeakMap<ServerResponse, IncomingMessage>();
  const trpc = createHTTPHandler({
    router: appRouter,
    basePath: "/api/trpc/",
    maxBodySize: MAX_BODY_BYTES,
    maxBatchSize: MAX_BATCH_CALLS,
    onError: ({ error }) => {
      // Called before the error is written out: the answer then says the limit.
      if (error.code === "BAD_REQUEST" && error.message === TRPC_BATCH_TOO_LARGE) {
        error.message = `A batch may hold at most ${MAX_BATCH_CALLS} calls: send the others in another request`;
      }
    },
    createContext: ({ res }) => {
      const req = requests.get(res)!;
      // tRPC reads `input` with URLSearchParams, which turns bytes that are not UTF-8 into U+FFFD;
      // throwing here refuses every call of the request with tRPC's own 400, before any runs.
      strictSearchParams(queryStringOf(req.url ?? ""));
      return createRequestContext(services, req, options.logger, auth, onBadToken(req), signUpAttempt(req));
    },
  });
  const rest = createRestHandler(appRouter, {
    createContext: (req) => createRequestContext(services, req, options.logger, auth, onBadToken(req), signUpAttempt(req)),
    maxBodyBytes: MAX_BODY_BYTES,
    logger: options.logger,
  });
  const openApiDocument = generateOpenApiDocument(appRouter, {
    title: "Slipway API",
    version: "1",
    baseUrl: `${options.publicUrl}${REST_PREFIX}`,
    description: "Every operation of the Slipway control plane. Authenticate with `Authorization: Bearer <API token>`.",
  });

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = req.url ?? "/";
    if (auth && (url === AUTH_BASE_PATH || url.startsWith(`${AUTH_BASE_PATH}/`))) {
      await handleAuthRequest(auth, req, res, limits && { limits, address: addressOf(req) });
      return true;
    }
    const api = url.startsWith("/api/trpc/") || url.startsWith(`${REST_PREFIX}/`);
    if (api && !SAFE_METHODS.has(req.method ?? "GET") && isCookieAuthenticated(req) && !fromOwnOrigin(req, options.publicUrl)) {
      res.writeHead(403, { "content-type": "application/json" }).end(JSON.stringify({ message: CROSS_ORIGIN_REFUSED, code: "FORBIDDEN" }));
      return true;
    }
    // An address that presented too many bad API tokens is refused before its token is looked at.
    const refused = api && limits && req.headers.authorization?.startsWith("Bearer ") ? await limits.tokensRefused(addressOf(req)) : null;
    if (refused) {
      const message = `Too many bad API tokens from this address: try again in ${refused.retryAfterSeconds} seconds`;
      res.writeHead(429, { "content-type": "application/json", "retry-after": String(refused.retryAfterSeconds) });
      res.end(JSON.stringify({ message, code: "TOO_MANY_REQUESTS" }));
      return true;
    }
    if (url.startsWith("/api/trpc/")) {
      // The dashboard's calls keep its session alive: 7 days from its last use (sessions.ts).
      // Renewing is not what the request asked for: a failure is logged, the request still served.
      if (auth && !req.headers.authorization) {
        await renewSessionCookie(auth, req, res).catch((error: unknown) => options.logger?.warn({ err: error }, "session renewal failed"));
      }
      requests.set(res, req);
      // Handles the request, and answers its errors, by itself: it returns nothing to wait for.
      trpc(req, res);
      return true;
    }
    if (url === `${REST_PREFIX}/openapi.json`) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(openApiDocument));
      return true;
    }
    if (url.startsWith(`${REST_PREFIX}/`)) {
      // Not new URL(path, base): a path starting with `//` would be read as a host.
      await rest(req, res, new URL(`http://localhost${url.slice(REST_PREFIX.length)}`));
      return true;
    }
    return false;
  };
}

/** The part of a request target from its `?` on (empty without one), as sent: still percent-encoded. */
function queryStringOf(target: string): string {
  const start = target.indexOf("?");
  return start === -1 ? "" : target.slice(start);
}
