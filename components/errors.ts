import { TRPCClientError } from "@trpc/client";

/** A zod issue as tRPC reports a refused input (zod's `ZodError.message` is the JSON of its issues). */
type Issue = { path?: (string | number)[]; message: string };
/** `z.flattenError()`'s shape, which a server error formatter may put in `data.zodError`. */
type Flattened = { formErrors?: string[]; fieldErrors?: Record<string, string[] | undefined> };

export type ApiErrorDetails = {
  /** One sentence for an alert or a notification. */
  message: string;
  /** Messages by dotted input path (`name`, `config.git.url`), when the server refused the input. */
  fields: Record<string, string>;
  code?: string;
  httpStatus?: number;
};

function parseIssues(message: string): Issue[] | null {
  if (!message.trimStart().startsWith("[")) return null;
  try {
    const parsed: unknown = JSON.parse(message);
    return Array.isArray(parsed) && parsed.every((issue) => typeof issue?.message === "string") ? (parsed as Issue[]) : null;
  } catch {
    return null;
  }
}

/**
 * One reading per error: a form compares what it showed with the failure it gets on the next
 * render (to clear a stale one as the input changes), which needs the same object each time.
 */
const read = new WeakMap<object, ApiErrorDetails>();

/** Reads what the API said: the message, and the per-field validation errors (zodError or the issue list). */
export function apiError(error: unknown): ApiErrorDetails {
  if (typeof error !== "object" || error === null) return readApiError(error);
  const known = read.get(error);
  if (known) return known;
  const details = readApiError(error);
  read.set(error, details);
  return details;
}

function readApiError(error: unknown): ApiErrorDetails {
  if (!(error instanceof TRPCClientError)) {
    return { message: error instanceof Error ? error.message : "Something went wrong", fields: {} };
  }
  const data = error.data as { code?: string; httpStatus?: number; zodError?: Flattened | null } | undefined;
  const fields: Record<string, string> = {};
  const general: string[] = [];
  if (data?.zodError) {
    for (const [path, messages] of Object.entries(data.zodError.fieldErrors ?? {})) if (messages?.[0]) fields[path] = messages[0];
    general.push(...(data.zodError.formErrors ?? []));
  }
  const issues = parseIssues(error.message);
  if (issues) {
    for (const issue of issues) {
      const path = (issue.path ?? []).join(".");
      if (path) fields[path] ??= issue.message;
      else general.push(issue.message);
    }
  }
  const fieldSummary = Object.entries(fields).map(([path, message]) => `${path}: ${message}`);
  const message =
    general.length > 0 || fieldSummary.length > 0
      ? [...general, ...fieldSummary].join("; ")
      : data?.code === "INTERNAL_SERVER_ERROR"
        ? "The server failed to do that; see its log for details."
        : error.message;
  return { message, fields, code: data?.code, httpStatus: data?.httpStatus };
}

export function isUnauthorized(error: unknown): boolean {
  return error instanceof TRPCClientError && (error.data as { code?: string } | undefined)?.code === "UNAUTHORIZED";
}

/**
 * Puts the server's per-field messages on a form's fields, by input path prefix (`config.git.url`
 * and below on `gitUrl`); `unmatched` says the form must show the message itself, in an alert.
 */
export function fieldErrorsFor<F extends string>(
  failure: ApiErrorDetails | null,
  paths: readonly (readonly [string, F])[],
): { fields: Partial<Record<F, string>>; unmatched: boolean } {
  const fields: Partial<Record<F, string>> = {};
  if (!failure) return { fields, unmatched: false };
  let unmatched = Object.keys(failure.fields).length === 0;
  for (const [path, message] of Object.entries(failure.fields)) {
    const match = paths.find(([prefix]) => path === prefix || path.startsWith(`${prefix}.`));
    if (match) fields[match[1]] ??= message;
    else unmatched = true;
  }
  return { fields, unmatched };
}
