import type { GitProvider, ProviderRepository } from "../../db/schema";
import type { ApiClient, ApiRequest, CommitStatus } from "./api-client";
import type { GitEvent } from "./events";
import type { Headers } from "./headers";

/**
 * Everything Slipway knows about one git provider, in one module per provider
 * (github.ts, gitlab.ts, bitbucket.ts, generic.ts): how its deliveries are signed and named,
 * which events it acts on, how their payloads become provider-neutral GitEvents, and how its
 * REST API is called. index.ts picks the module by the connection's provider.
 */
export interface ProviderAdapter {
  name: GitProvider;
  /** Whether the delivery carries the provider's proof that it was sent with `secret`. */
  verifySignature(secret: string, body: Buffer, headers: Headers): boolean;
  /** The headers a sender proves itself with: what tests, the bench and the CLI send. */
  signatureHeaders(secret: string, body: string | Buffer): Record<string, string>;
  /** The delivery id (what de-duplicates retries) and the event name, as the headers give them. */
  deliveryHead(headers: Headers, body: Buffer): { deliveryId: string | undefined; event: string | undefined };
  /** Whether Slipway acts on this event at all; anything else is stored as IGNORED. */
  actsOn(event: string, payload: unknown): boolean;
  /**
   * The repository URLs the payload names, read without validating the rest: what lets the
   * intake and the worker pass over deliveries for repositories no service follows.
   */
  repositoryUrls(payload: unknown): string[];
  /** The events the delivery carries; throws PayloadError when the payload lacks the documented shape. */
  events(event: string, payload: unknown): GitEvent[];
  /** The provider's REST API; null for a provider that has none (the generic hook). */
  api: ProviderApi | null;
}

export interface ProviderApi {
  /** The public service's API, used when the connection names no base URL. */
  defaultBaseUrl: string;
  /** The headers every call sends: the token, and the media type the API answers in. */
  requestHeaders(token: string): Record<string, string>;
  /** The repository's path under the base URL; throws ProviderApiError when the delivery named none. */
  repositoryPath(repository: ProviderRepository): string;
  /** Posts the preview's status on the commit (under the repository's path). */
  commitStatus(commit: string, status: CommitStatus): ApiRequest;
  /** Posts the pull request's comment, or edits the one posted before (under the repository's path). */
  comment(number: number, commentId: string | null, body: string): ApiRequest;
  /**
   * The files changed between two commits, renamed files under both names, for a push whose
   * payload does not list them. Null when the answer may be incomplete: an unknown change deploys.
   */
  changedFilesBetween(client: ApiClient, before: string, after: string): Promise<string[] | null>;
}
