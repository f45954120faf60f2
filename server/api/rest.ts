import type { IncomingMessage, ServerResponse } from "node:http";
import { callTRPCProcedure, getTRPCErrorFromUnknown, TRPCError, type AnyTRPCProcedure, type AnyTRPCRouter } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import type { OpenApiMeta } from "trpc-to-openapi";
import { ZodError } from "zod";
import type { Logger } from "../logger";
import { readJsonBody } from "./json-body";
import { strictSearchParams } from "./query-string";
import type { ApiContext } from "./trpc";

type Route = { method: string; pattern: RegExp; parameters: string[]; path: string; type: "query" | "mutation" };

const METHODS_WITH_BODY = new Set(["POST", "PUT", "PATCH"]);

/** The routes of the procedures that declare an OpenAPI method and path, e.g. `PATCH /environments/{environmentId}`. */
function routesOf(router: AnyTRPCRouter): Route[] {
  const routes: Route[] = [];
  // Keyed by the full path (`environments.update`): the nested record is `_def.record`.
  for (const [path, procedure] of Object.entries(router._def.procedures as Record<string, AnyTRPCProcedure>)) {
    const openapi = (procedure._def.meta as OpenApiMeta | undefined)?.openapi;
    if (!openapi || openapi.enabled === false) continue;
    const type = procedure._def.type;
    if (type === "subscription") continue;
    const parameters: string[] = [];
    const source = openapi.path.replace(/\/+$/, "").replace(/[.*+?^$()|[\]\\]/g, "\\$&");
    const pattern = new RegExp(
      `^${source.replace(/\{(\w+)\}/g, (_, name: string) => {
        parameters.push(name);
        return "([^/]+)";
      })}$`,
    );
    routes.push({ method: openapi.method, pattern, parameters, path, type });
  }
  return routes;
}

/**
 * The procedures as REST (`/api/v1`), as the OpenAPI document describes them: path parameters,
 * then the query string (GET, DELETE) or a JSON object body (POST, PUT, PATCH), make the input.
 *
 * Our own rather than trpc-to-openapi's handler, which coerces every input, body included, by
 * setting `coerce` on the procedures' own zod schemas (for tRPC calls too, from then on): the
 * string "false" became `true`, and `true`, "" or [] became a number (issue 13). Here values
 * reach the schemas as sent: a query string is text, and a schema that takes a number from one
 * says so (server/input-schemas.ts).
 */
export function createRestHandler(
  router: AnyTRPCRouter,
  options: { createContext: (req: IncomingMessage) => Promise<ApiContext>; maxBodyBytes: number; logger?: Logger },
) {
  const routes = routesOf(router);

  return async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      const pathname = url.pathname.replace(/\/+$/, "");
      const matching = routes.filter((route) => route.pattern.test(pathname));
      if (matching.length === 0) throw new TRPCError({ code: "NOT_FOUND", message: `No operation at ${pathname}: see /api/v1/openapi.json` });
      const route = matching.find((r) => r.method === req.method);
      if (!route) {
        res.setHeader("allow", matching.map((r) => r.method).join(", "));
        throw new TRPCError({ code: "METHOD_NOT_SUPPORTED", message: `${req.method} is not an operation of ${pathname}` });
      }
      const input = { ...(await bodyOrQuery(req, url, options.maxBodyBytes)), ...pathParameters(route, pathname) };
      const ctx = await options.createContext(req);
      const data: unknown = await callTRPCProcedure({
        router,
        path: route.path,
        type: route.type,
        ctx,
        getRawInput: () => Promise.resolve(input),
        signal: undefined,
        batchIndex: 0,
      });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(data));
    } catch (cause) {
      const error = getTRPCErrorFromUnknown(cause);
      // Procedures log their own internal errors (trpc.ts); this is one before or around them.
      if (error.code === "INTERNAL_SERVER_ERROR" && !(cause instanceof TRPCError)) options.logger?.error({ err: cause, url: req.url }, "REST request failed");
      res.writeHead(getHTTPStatusCodeFromError(error), { "content-type": "application/json" }).end(JSON.stringify(errorBody(error)));
    }
  };
}

/** `{ message, code, issues? }`: tRPC's code name, and the zod issues when the input was refused (the CLI summarizes them). */
function errorBody(error: TRPCError) {
  if (error.code === "INTERNAL_SERVER_ERROR") return { message: "Internal error", code: error.code };
  if (error.code === "BAD_REQUEST" && error.cause instanceof ZodError) {
    const { issues } = error.cause;
    const message = issues.map((issue) => `${issue.path.join(".") || "input"}: ${issue.message}`).join("; ");
    return { message, code: error.code, issues };
  }
  return { message: error.message, code: error.code };
}

function pathParameters(route: Route, pathname: string): Record<string, string> {
  const values = route.pattern.exec(pathname)!.slice(1);
  return Object.fromEntries(
    route.parameters.map((name, i) => {
      try {
        return [name, decodeURIComponent(values[i]!)];
      } catch {
        throw new TRPCError({ code: "BAD_REQUEST", message: `${name}: the path segment is not valid percent-encoded UTF-8` });
      }
    }),
  );
}

async function bodyOrQuery(req: IncomingMessage, url: URL, maxBodyBytes: number): Promise<Record<string, unknown>> {
  if (METHODS_WITH_BODY.has(req.method ?? "")) {
    const body = await readJsonBody(req, maxBodyBytes);
    if (!body.ok) throw new TRPCError({ code: body.code, message: body.message });
    return body.value;
  }
  const query = new Map<string, string>();
  for (const [key, value] of strictSearchParams(url.search)) {
    if (query.has(key)) throw new TRPCError({ code: "BAD_REQUEST", message: `${key}: give this query parameter once` });
    query.set(key, value);
  }
  return Object.fromEntries(query);
}
