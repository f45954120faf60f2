import type { IncomingMessage, ServerResponse } from "node:http";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { generateOpenApiDocument } from "trpc-to-openapi";
import type { AuthConfig } from "@auth/core";
import { sql } from "drizzle-orm";
import { AUTH_BASE_PATH, handleAuthRequest } from "../auth/sessions";
import type { Services } from "../context";
import type { Logger } from "../logger";
import { createRequestContext } from "./context";
import { createRestHandler } from "./rest";
import { appRouter } from "./root";

const REST_PREFIX = "/api/v1";
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The API over HTTP: tRPC at /api/trpc for the dashboard, the same procedures as REST at
 * /api/v1 for the CLI and scripts, and the OpenAPI document generated from them. Returns
 * false for paths it does not serve, so the caller hands them to Next.js.
 */
export function createApiHandler(services: Services, options: { publicUrl: string; logger?: Logger; auth?: AuthConfig }) {
  // Without an auth configuration (tests of the API alone) there are no browser sessions, only API tokens.
  const { auth } = options;
  // The tRPC adapter wraps the request in a fetch Request; the response object passes through
  // unchanged, so it leads back to the Node request with its headers and socket.
  const requests = new WeakMap<ServerResponse, IncomingMessage>();
  const trpc = createHTTPHandler({
    router: appRouter,
    basePath: "/api/trpc/",
    maxBodySize: MAX_BODY_BYTES,
    createContext: ({ res }) => createRequestContext(services, requests.get(res)!, options.logger, auth),
  });
  const rest = createRestHandler(appRouter, {
    createContext: (req) => createRequestContext(services, req, options.logger, auth),
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
    if (url === "/api/health") {
      const database = await databaseAnswers(services.db);
      res.writeHead(database ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ ok: database, database: database ? "up" : "down" }));
      return true;
    }
    if (auth && (url === AUTH_BASE_PATH || url.startsWith(`${AUTH_BASE_PATH}/`))) {
      await handleAuthRequest(auth, req, res);
      return true;
    }
    if (url.startsWith("/api/trpc/")) {
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

const HEALTH_TIMEOUT_MS = 2_000;

/**
 * Whether the database answers a trivial query within two seconds. The health check says
 * "down" while it does not: a web process that answers 200 without a database would keep a
 * load balancer sending it requests it can only fail.
 */
async function databaseAnswers(db: Services["db"]): Promise<boolean> {
  const timeout = new Promise<false>((resolve) => setTimeout(resolve, HEALTH_TIMEOUT_MS, false).unref());
  const query = db.execute(sql`select 1`).then(
    () => true,
    () => false,
  );
  return Promise.race([query, timeout]);
}
