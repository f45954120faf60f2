import type { IncomingMessage, ServerResponse } from "node:http";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { createOpenApiHttpHandler, generateOpenApiDocument } from "trpc-to-openapi";
import type { Services } from "../context";
import type { Logger } from "../logger";
import { createRequestContext } from "./context";
import { appRouter } from "./root";

const REST_PREFIX = "/api/v1";

/**
 * The API over HTTP: tRPC at /api/trpc for the dashboard, the same procedures as REST at
 * /api/v1 for the CLI and scripts, and the OpenAPI document generated from them. Returns
 * false for paths it does not serve, so the caller hands them to Next.js.
 */
export function createApiHandler(services: Services, options: { publicUrl: string; logger?: Logger }) {
  const createContext = ({ req }: { req: IncomingMessage }) => createRequestContext(services, req, options.logger);
  const trpc = createHTTPHandler({ router: appRouter, createContext, basePath: "/api/trpc/" });
  const rest = createOpenApiHttpHandler({ router: appRouter, createContext, maxBodySize: 1024 * 1024 });
  const openApiDocument = generateOpenApiDocument(appRouter, {
    title: "Slipway API",
    version: "1",
    baseUrl: `${options.publicUrl}${REST_PREFIX}`,
    description: "Every operation of the Slipway control plane. Authenticate with `Authorization: Bearer <API token>`.",
  });

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = req.url ?? "/";
    if (url === "/api/health") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
      return true;
    }
    if (url.startsWith("/api/trpc/")) {
      await trpc(req, res);
      return true;
    }
    if (url === `${REST_PREFIX}/openapi.json`) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(openApiDocument));
      return true;
    }
    if (url.startsWith(`${REST_PREFIX}/`)) {
      req.url = url.slice(REST_PREFIX.length);
      await rest(req, res);
      return true;
    }
    return false;
  };
}
