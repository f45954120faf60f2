import { randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import examples from "@octokit/webhooks-examples";
import type { GitProvider } from "../../server/db/schema";
import { signatureHeaders } from "../../server/webhooks/providers";
import type { PullRequestEvent } from "../../server/webhooks/providers/events";

const fixturesDir = fileURLToPath(new URL("../fixtures/webhooks/", import.meta.url));

/** A GitHub example payload from @octokit/webhooks-examples (GitHub's own), deep-copied so tests may change it. */
export function githubExample(event: string, pick: (example: Record<string, unknown>) => boolean = () => true): Record<string, unknown> {
  const definition = examples.find((d) => d.name === event);
  const found = (definition?.examples as unknown as Record<string, unknown>[] | undefined)?.find(pick);
  if (!found) throw new Error(`no GitHub example for ${event}`);
  return structuredClone(found);
}

/** A GitLab or Bitbucket fixture (test/fixtures/webhooks/<provider>/<name>.json). */
export function fixturePayload(provider: "gitlab" | "bitbucket", name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(`${fixturesDir}${provider}/${name}.json`, "utf8")) as Record<string, unknown>;
}

/** The event and delivery-id headers each provider sends. */
export function eventHeaders(provider: GitProvider, event: string, deliveryId: string): Record<string, string> {
  switch (provider) {
    case "github":
      return { "x-github-event": event, "x-github-delivery": deliveryId, "user-agent": "GitHub-Hookshot/test" };
    case "gitlab":
      return { "x-gitlab-event": event, "x-gitlab-event-uuid": deliveryId, "idempotency-key": deliveryId, "x-gitlab-instance": "http://example.com" };
    case "bitbucket":
      return {
        "x-event-key": event,
        "x-request-uuid": deliveryId,
        "x-hook-uuid": "{8a1e6b0e-0000-4000-8000-000000000001}",
        "user-agent": "Bitbucket-Webhooks/2.0",
      };
    case "generic":
      return { "x-slipway-event": event, "x-slipway-delivery": deliveryId };
  }
}

/** A pull request `number` from a `feature` branch of the same repository, opened against `main`, as the providers' parsers make it. */
export function openedPullRequest(repositoryUrl: string, number: number, changes: Partial<PullRequestEvent> = {}): PullRequestEvent {
  return {
    kind: "pull_request",
    action: "opened",
    number,
    title: "Feature",
    url: null,
    repositoryUrls: [repositoryUrl],
    providerRepository: { fullName: "acme/shop" },
    baseBranch: "main",
    headBranch: "feature",
    headCommit: "a".repeat(40),
    headRepositoryUrls: null,
    merged: false,
    actor: "octocat",
    ...changes,
  };
}

export type Sent = { status: number; body: Record<string, unknown> };

/** POSTs raw bytes with headers over a fresh connection; resolves with the answer. */
export function post(url: string, body: string | Buffer, headers: Record<string, string | number>): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A delivery signed the provider's way; `deliveryId` defaults to a fresh one. */
export function deliver(
  url: string,
  options: { provider: GitProvider; secret: string; event: string; payload: unknown; deliveryId?: string; headers?: Record<string, string> },
): Promise<Sent & { deliveryId: string }> {
  const deliveryId = options.deliveryId ?? randomUUID();
  const body = JSON.stringify(options.payload);
  const headers = {
    "content-type": "application/json",
    ...eventHeaders(options.provider, options.event, deliveryId),
    ...signatureHeaders(options.provider, options.secret, body),
    ...options.headers,
  };
  return post(url, body, headers).then((sent) => ({ ...sent, deliveryId }));
}

export type RecordedCall = { method: string; path: string; headers: http.IncomingHttpHeaders; body: Record<string, unknown> };

/** What a test's provider API answers a request with, instead of the default. */
export type ProviderAnswer = { status: number; body: unknown };

/**
 * A local HTTP server on 127.0.0.1 that plays the git provider's REST API (GitHub, GitLab or
 * Bitbucket): it records every request and answers 201 with a new id, as the providers do for
 * created statuses and comments, unless the test's `answer` (settable at any time) returns
 * something else for it.
 */
export async function startProviderApi() {
  const calls: RecordedCall[] = [];
  let next = 1000;
  const api = { answer: (_call: RecordedCall): ProviderAnswer | undefined => undefined };
  const server = http.createServer((req, res) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (text += chunk));
    req.on("end", () => {
      const call = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
      calls.push(call);
      const answer = api.answer(call) ?? { status: req.method === "POST" ? 201 : 200, body: { id: next++ } };
      res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    /** Answers the requests it returns something for; the default answer otherwise. */
    set answer(answer: (call: RecordedCall) => ProviderAnswer | undefined) {
      api.answer = answer;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
