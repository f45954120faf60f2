/**
 * The tRPC instance: context, error mapping and the procedure builders every router uses.
 *
 * A procedure declares the role it needs as part of its definition (`procedure("DEVELOPER")`);
 * this file is the one place that checks it. Routers stay thin: they parse input, call a plain
 * domain function with the request's DomainContext, and map the result to an output schema.
 */
import { initTRPC, TRPCError } from "@trpc/server";
import type { TRPC_ERROR_CODE_KEY } from "@trpc/server/rpc";
import type { OpenApiMeta } from "trpc-to-openapi";
import { ZodError, ZodRealError } from "zod";
import { findUser } from "../auth/accounts";
import { hasRole, type Actor } from "../auth/actor";
import type { Refusal } from "../auth/rate-limits";
import type { DomainContext, Services } from "../context";
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from "../db/errors";
import type { Role } from "../db/schema";
import { isAppError, type AppErrorCode } from "../errors";
import type { Logger } from "../logger";
import { findInputProblem } from "./raw-input";

export type ApiContext = {
  services: Services;
  /** Null when the request carried no valid credentials. */
  actor: Actor | null;
  /**
   * The signed-in user of a browser session, whether or not they belong to an organization yet
   * (a newcomer has no actor, but may create an organization). Absent for API tokens.
   */
  sessionUserId?: string | null;
  /** The caller's address, for the audit of what no actor does yet (a sign-up). */
  ip?: string;
  /** Counts a sign-up from the caller's address (server/auth/rate-limits.ts); a refusal says when to try again. */
  signUpAttempt?: () => Promise<Refusal | null>;
  logger?: Logger;
};

const t = initTRPC
  .context<ApiContext>()
  .meta<OpenApiMeta>()
  .create({
    // Stack traces stay in the server log.
    isDev: false,
    errorFormatter({ shape, error }) {
      // Internal errors keep their cause in the server log, not in the answer.
      if (error.code === "INTERNAL_SERVER_ERROR") return { ...shape, message: "Internal error" };
      return shape;
    },
  });

const trpcCodes: Record<AppErrorCode, TRPC_ERROR_CODE_KEY> = {
  NOT_FOUND: "NOT_FOUND",
  FORBIDDEN: "FORBIDDEN",
  UNAUTHORIZED: "UNAUTHORIZED",
  CONFLICT: "CONFLICT",
  INVALID: "BAD_REQUEST",
  UNAVAILABLE: "SERVICE_UNAVAILABLE",
};

/**
 * A failure to reach the database (a restart, a failover) as the 503 a client retries, not an
 * internal error; null for any other failure.
 */
export function databaseUnavailableError(error: unknown): TRPCError | null {
  return isDatabaseUnavailable(error) ? new TRPCError({ code: "SERVICE_UNAVAILABLE", message: DATABASE_UNAVAILABLE_MESSAGE, cause: error }) : null;
}

/** The adapter from domain errors to tRPC (and so to REST status codes). */
const mapErrors = t.middleware(async ({ next, ctx, path }) => {
  const result = await next();
  if (!result.ok) {
    const cause = result.error.cause;
    if (isAppError(cause)) throw new TRPCError({ code: trpcCodes[cause.code], message: cause.message, cause });
    const unavailable = databaseUnavailableError(cause);
    if (unavailable) throw unavailable;
    // A schema check inside a domain function (a merged configuration, say) is bad input too;
    // input parsing failures are BAD_REQUEST already, with their issues.
    if (cause instanceof ZodError && result.error.code === "INTERNAL_SERVER_ERROR") {
      const message = cause.issues.map((issue) => `${issue.path.join(".") || "input"}: ${issue.message}`).join("; ");
      throw new TRPCError({ code: "BAD_REQUEST", message, cause });
    }
    if (result.error.code === "INTERNAL_SERVER_ERROR") ctx.logger?.error({ err: cause ?? result.error, path }, "procedure failed");
  }
  return result;
});

/**
 * The checks of server/api/raw-input.ts, on the input as it arrived, before its schema: one place
 * for every procedure and transport. Reported as a zod issue with its path, like a schema's
 * (ZodRealError is the ZodError that is an Error, as the ones parsing throws: tRPC keeps it as the cause).
 */
const checkRawInput = t.middleware(async ({ next, getRawInput }) => {
  const problem = findInputProblem(await getRawInput());
  if (problem) {
    const cause = new ZodRealError([{ code: "custom", path: problem.path, message: problem.message, input: undefined }]);
    // Without a message of its own, the JSON of the issues, as for a schema's: the dashboard maps them to its fields.
    throw new TRPCError({ code: "BAD_REQUEST", cause });
  }
  return next();
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(mapErrors).use(checkRawInput);

/** A procedure open to members of the organization with at least `role`. */
export function procedure(role: Role) {
  return (
    t.procedure
      .use(mapErrors)
      .use(({ ctx, next }) => {
        if (!ctx.actor) throw new TRPCError({ code: "UNAUTHORIZED", message: "Sign in or pass an API token" });
        if (!hasRole(ctx.actor, role)) throw new TRPCError({ code: "FORBIDDEN", message: `This action needs the ${role} role or higher` });
        const domain: DomainContext = { ...ctx.services, actor: ctx.actor };
        return next({ ctx: { ...ctx, actor: ctx.actor, domain } });
      })
      // After the role check, as the schema is: a caller without access learns nothing of the input's rules.
      .use(checkRawInput)
  );
}

/**
 * A procedure for a signed-in user acting on their own behalf, outside any one organization
 * (creating an organization, their account): a browser session, member of an organization or
 * not; or an API token with the OWNER role, which stands for the member who created it. A
 * narrower token is scoped to its organization and refused (a CI token must not mint OWNERs).
 * With `instanceAdmin`, only instance admins (server/instance/settings.ts).
 */
export function userProcedure(options: { instanceAdmin?: boolean } = {}) {
  return t.procedure
    .use(mapErrors)
    .use(async ({ ctx, next }) => {
      const { actor } = ctx;
      if (actor?.type === "token" && !hasRole(actor, "OWNER")) {
        throw new TRPCError({ code: "FORBIDDEN", message: "Only a token with the OWNER role acts for its creator outside its organization" });
      }
      const userId = actor ? (actor.userId ?? (actor.type === "user" ? actor.id : null)) : (ctx.sessionUserId ?? null);
      const user = userId ? await findUser(ctx.services.db, userId) : null;
      if (!user) throw new TRPCError({ code: "UNAUTHORIZED", message: "Sign in or pass an API token" });
      if (options.instanceAdmin && !user.instanceAdmin)
        throw new TRPCError({ code: "FORBIDDEN", message: "Only an instance admin can change the instance's settings" });
      const account = { ...ctx.services, user, origin: actor?.origin ?? ("UI" as const), ip: actor?.ip ?? ctx.ip };
      return next({ ctx: { ...ctx, account } });
    })
    .use(checkRawInput);
}
