import { z } from "zod";
import type { GitProvider, ProviderRepository } from "../../db/schema";

/**
 * Calling a provider's REST API: for what Slipway reports back on a pull request (a commit
 * status and one comment, edited as the preview changes) and for the files a push changed when
 * its payload does not list them. Each provider module says which paths and bodies; this says how
 * they are sent.
 */

export class ProviderApiError extends Error {}

export type StatusState = "pending" | "success" | "failure";
export type CommitStatus = { state: StatusState; url: string | null; description: string };

/** The name statuses are posted under, so a later one replaces the earlier on the provider's side. */
export const STATUS_CONTEXT = "slipway/preview";

/** One call: a path under the repository's API path, and a body sent as JSON when there is one. */
export type ApiRequest = { method: "POST" | "PUT" | "PATCH"; path: string; body: unknown };

export type ApiClient = {
  /** The API's base URL, without a trailing slash. */
  base: string;
  /** The repository's path under `base`. */
  repository: string;
  /** Calls `path` under `base`; an answer that is not JSON reads as `{}`. */
  call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>>;
};

/** `owner/name` of the repository the delivery named, each part escaped for a URL path. */
export function ownerAndName(repository: ProviderRepository): string {
  const fullName = repository.fullName;
  if (!fullName || !/^[^/]+\/[^/]+$/.test(fullName)) throw new ProviderApiError("The delivery named no repository");
  return fullName.split("/").map(encodeURIComponent).join("/");
}

export function apiClient(provider: GitProvider, base: string, repository: string, requestHeaders: Record<string, string>): ApiClient {
  return {
    base,
    repository,
    async call(method, path, body) {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...requestHeaders,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          "user-agent": "Slipway",
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      if (!response.ok) throw new ProviderApiError(`${provider} API ${method} ${path}: ${response.status} ${text.slice(0, 200)}`);
      try {
        return text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        return {};
      }
    },
  };
}

/** The answer as `schema` reads it: what the provider's API promises is checked, not assumed. */
export function parseAnswer<T>(schema: z.ZodType<T>, answer: unknown, what: string): T {
  const parsed = schema.safeParse(answer);
  if (!parsed.success) throw new ProviderApiError(`${what}: answer not understood`);
  return parsed.data;
}
