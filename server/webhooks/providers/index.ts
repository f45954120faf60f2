import type { GitProvider, ProviderRepository } from "../../db/schema";
import type { ProviderAdapter } from "./adapter";
import { apiClient, ProviderApiError, type ApiClient, type ApiRequest, type CommitStatus } from "./api-client";
import { bitbucket } from "./bitbucket";
import type { GitEvent } from "./events";
import { generic } from "./generic";
import { github } from "./github";
import { gitlab } from "./gitlab";
import type { Headers } from "./headers";

/**
 * The git providers Slipway takes webhooks from, one module each behind ProviderAdapter
 * (adapter.ts), and the functions the rest of the code calls with a connection's provider.
 */

export type { GitEvent, PullRequestEvent, PushEvent } from "./events";
export { PayloadError } from "./payload";
export { storableHeaders } from "./headers";
export { ProviderApiError, type StatusState } from "./api-client";

/** Keyed by every provider the database knows: a new one does not compile until it has a module. */
const adapters: Record<GitProvider, ProviderAdapter> = { github, gitlab, bitbucket, generic };

/** Checks a delivery the way its provider signs it (each module links its provider's documentation). */
export function verifySignature(provider: GitProvider, secret: string, body: Buffer, headers: Headers): boolean {
  return adapters[provider].verifySignature(secret, body, headers);
}

/** The header a sender puts the signature in, for the provider: what tests, the bench and the CLI need. */
export function signatureHeaders(provider: GitProvider, secret: string, body: string | Buffer): Record<string, string> {
  return adapters[provider].signatureHeaders(secret, body);
}

export type DeliveryHead = { deliveryId: string; event: string };

/** The delivery id (what de-duplicates retries) and the event name; null when the request lacks them or they are too long to store. */
export function deliveryHead(provider: GitProvider, headers: Headers, body: Buffer): DeliveryHead | null {
  const { deliveryId, event } = adapters[provider].deliveryHead(headers, body);
  if (!deliveryId || !event || deliveryId.length > 200 || event.length > 100) return null;
  return { deliveryId, event };
}

/** Whether Slipway acts on this event at all; anything else is stored as IGNORED. */
export function actsOn(provider: GitProvider, event: string, payload: unknown): boolean {
  return adapters[provider].actsOn(event, payload);
}

/**
 * The repository URLs a payload names, read without validating the rest: what lets the worker
 * pass over deliveries for repositories no service follows without parsing them further.
 */
export function repositoryUrlsOf(provider: GitProvider, payload: unknown): string[] {
  return adapters[provider].repositoryUrls(payload);
}

/**
 * The events a delivery carries (a Bitbucket push can move several refs at once). Throws
 * PayloadError when the payload does not have the documented shape.
 */
export function gitEvents(provider: GitProvider, event: string, payload: unknown): GitEvent[] {
  return adapters[provider].events(event, payload);
}

/** Whether the provider has a REST API to report to and ask (the generic hook has none). */
export function hasApi(provider: GitProvider): boolean {
  return adapters[provider].api !== null;
}

/** A connection's provider and API credentials, and the repository a delivery named. */
export type ProviderTarget = { provider: GitProvider; apiBaseUrl: string | null; token: string; repository: ProviderRepository };

function clientFor(target: ProviderTarget, purpose: string) {
  const api = adapters[target.provider].api;
  if (!api) throw new ProviderApiError(`The ${target.provider} provider has no API to ${purpose}`);
  const repository = api.repositoryPath(target.repository);
  const base = (target.apiBaseUrl ?? api.defaultBaseUrl).replace(/\/+$/, "");
  return { api, client: apiClient(target.provider, base, repository, api.requestHeaders(target.token)) };
}

/** Sends a request whose path is under the repository's. */
const send = (client: ApiClient, request: ApiRequest) => client.call(request.method, `${client.repository}${request.path}`, request.body);

export async function postCommitStatus(target: ProviderTarget, commit: string, status: CommitStatus): Promise<void> {
  const { api, client } = clientFor(target, "report to");
  await send(client, api.commitStatus(commit, { ...status, description: status.description.slice(0, 140) }));
}

/** Posts the comment, or edits the one posted before; returns its id. */
export async function upsertComment(target: ProviderTarget, number: number, commentId: string | null, body: string): Promise<string> {
  const { api, client } = clientFor(target, "report to");
  const answer = await send(client, api.comment(number, commentId, body));
  return String(answer.id ?? commentId);
}

/**
 * The files changed between two commits, renamed files under both names, for a push whose
 * payload does not list them (Bitbucket never does; GitHub and GitLab stop at 20 commits).
 * Null when the provider's answer may be incomplete: an unknown change deploys.
 */
export async function changedFilesBetween(target: ProviderTarget, before: string, after: string): Promise<string[] | null> {
  const { api, client } = clientFor(target, "ask");
  return api.changedFilesBetween(client, before, after);
}
