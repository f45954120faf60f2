import type { Resolved } from "./api-types";
import { CliError, ControlPlaneUnreachable, exitCodes, type ExitCode } from "./errors";

/**
 * The REST client: `/api/v1` of one control plane, authenticated with an API token. Queries
 * go in the query string (GET, DELETE), everything else as a JSON body, as the OpenAPI
 * adapter expects. Every failure becomes a CliError whose message fits on one line.
 */
export type Query = Record<string, string | number | boolean | undefined>;

type ApiClientOptions = {
  url: string;
  token: string;
  /** Aborts in-flight requests when the user presses Ctrl-C (or a test stops the command). */
  signal?: AbortSignal;
  timeoutMs?: number;
};

/** The error body of the REST adapter: tRPC's code name, a message, and zod issues for bad input. */
type ApiErrorBody = { message?: unknown; code?: unknown; issues?: unknown };
type Issue = { path?: unknown; message?: unknown; code?: unknown; errors?: unknown };

const statusExitCodes: Record<number, ExitCode> = {
  401: exitCodes.denied,
  403: exitCodes.denied,
  404: exitCodes.notFound,
  409: exitCodes.conflict,
};

export class ApiClient {
  readonly url: string;
  private readonly token: string;
  private readonly signal: AbortSignal | undefined;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions) {
    this.url = options.url;
    this.token = options.token;
    this.signal = options.signal;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  delete<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("DELETE", path, { query });
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>("POST", path, { body });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, { body });
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, { body });
  }

  /** `project[/environment[/service]]` to ids; unknown names answer 404 with the name in the message. */
  resolve(path: string): Promise<Resolved> {
    return this.get<Resolved>("/resolve", { path });
  }

  private async request<T>(method: string, path: string, { query, body }: { query?: Query; body?: unknown }): Promise<T> {
    const target = new URL(`${this.url}/api/v1${path}`);
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) target.searchParams.set(key, String(value));
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      // The audit log records where a change came from.
      "x-slipway-origin": "CLI",
      accept: "application/json",
    };
    if (body !== undefined) headers["content-type"] = "application/json";

    let response: Response;
    try {
      response = await fetch(target, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: this.signal ? AbortSignal.any([this.signal, timeout]) : timeout,
      });
    } catch (error) {
      throw this.failedExchange(error, timeout);
    }

    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      // The connection can also drop halfway through the body, when the control plane stops.
      throw this.failedExchange(error, timeout);
    }
    if (gatewayStatuses.has(response.status) && !isJson(text)) {
      // A proxy's own error page: the control plane behind it is down or restarting.
      throw new ControlPlaneUnreachable(`cannot reach ${this.url}: HTTP ${response.status} ${response.statusText}`.trimEnd());
    }
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      throw new CliError(`unexpected answer from ${this.url} (HTTP ${response.status}, not JSON): is it a Slipway control plane?`);
    }
    if (response.ok) return parsed as T;
    throw apiError(response.status, parsed, this.url);
  }

  /** Why a request got no answer: Ctrl-C, the timeout, or the network (transient or not). */
  private failedExchange(error: unknown, timeout: AbortSignal): CliError {
    if (this.signal?.aborted) return new CliError("interrupted", exitCodes.interrupted);
    if (timeout.aborted) return new ControlPlaneUnreachable(`cannot reach ${this.url}: no answer within ${this.timeoutMs / 1000}s`, { cause: error });
    const { reason, transient } = networkFailure(error);
    const message = `cannot reach ${this.url}: ${reason}`;
    return transient ? new ControlPlaneUnreachable(message, { cause: error }) : new CliError(message, exitCodes.failure, { cause: error });
  }
}

/** Bad gateway, unavailable, gateway timeout: what a proxy or the API says while the control plane is down. */
const gatewayStatuses: ReadonlySet<number> = new Set([502, 503, 504]);

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function apiError(status: number, body: unknown, url: string): CliError {
  const { message, issues } = (typeof body === "object" && body !== null ? body : {}) as ApiErrorBody;
  const text = typeof message === "string" && message.length > 0 ? message : `HTTP ${status} from ${url}`;
  // The API's own UNAVAILABLE (its database is down, say) keeps its message and may pass too.
  if (gatewayStatuses.has(status)) return new ControlPlaneUnreachable(text);
  if (status === 400) {
    const summary = summarizeIssues(Array.isArray(issues) ? issues : issuesInMessage(text));
    // Input the API's schema rejected is a usage error; a rule of the domain (INVALID) is a failure.
    if (summary) return new CliError(summary, exitCodes.usage);
    return new CliError(text, exitCodes.failure);
  }
  return new CliError(text, statusExitCodes[status] ?? exitCodes.failure);
}

/** tRPC puts the zod issues as JSON in the message when the adapter does not lift them out. */
function issuesInMessage(message: string): unknown[] {
  if (!message.startsWith("[")) return [];
  try {
    const parsed: unknown = JSON.parse(message);
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}

/** `config.git.url: expected an https, ssh or git URL …; name: …` on one line. */
export function summarizeIssues(issues: readonly unknown[]): string | null {
  const parts = issues.map((raw) => {
    const issue = (raw ?? {}) as Issue;
    const path = Array.isArray(issue.path) ? issue.path.map(String).join(".") : "";
    let message = typeof issue.message === "string" ? issue.message : "invalid";
    // A union (a branch or a commit) fails on every branch: name what each branch wanted.
    if (issue.code === "invalid_union" && Array.isArray(issue.errors)) {
      const branches = issue.errors.flatMap((branch: unknown) => (Array.isArray(branch) ? branch : []) as Issue[]);
      const reasons = [...new Set(branches.map((b) => b.message).filter((m): m is string => typeof m === "string"))];
      if (reasons.length > 0) message = reasons.join(" or ");
    }
    return path ? `${path}: ${message}` : message;
  });
  return parts.length > 0 ? parts.join("; ") : null;
}

/**
 * What fetch's error codes mean, and whether waiting can fix them. A host that is not found is
 * transient too: the DNS name of a container disappears while it restarts, and a follow only
 * retries after the control plane has answered once, so a typo in the URL never gets here.
 */
const networkReasons: Record<string, { reason: string; transient: boolean }> = {
  ECONNREFUSED: { reason: "connection refused", transient: true },
  ENOTFOUND: { reason: "host not found", transient: true },
  EAI_AGAIN: { reason: "host not found", transient: true },
  ECONNRESET: { reason: "connection reset", transient: true },
  EPIPE: { reason: "connection reset", transient: true },
  ETIMEDOUT: { reason: "connection timed out", transient: true },
  EHOSTUNREACH: { reason: "host unreachable", transient: true },
  ENETUNREACH: { reason: "network unreachable", transient: true },
  UND_ERR_CONNECT_TIMEOUT: { reason: "connection timed out", transient: true },
  UND_ERR_SOCKET: { reason: "connection closed", transient: true },
  CERT_HAS_EXPIRED: { reason: "its TLS certificate has expired", transient: false },
  DEPTH_ZERO_SELF_SIGNED_CERT: { reason: "its TLS certificate is self-signed", transient: false },
};

/** fetch hides the reason in `cause` (an AggregateError when both IPv4 and IPv6 were tried). */
function networkFailure(error: unknown): { reason: string; transient: boolean } {
  const cause = (error as { cause?: unknown }).cause;
  const candidates = [cause, ...((cause as { errors?: unknown[] } | undefined)?.errors ?? [])];
  for (const candidate of candidates) {
    const code = (candidate as { code?: unknown } | undefined)?.code;
    if (typeof code === "string") return networkReasons[code] ?? { reason: code, transient: false };
  }
  const message = (cause as Error | undefined)?.message ?? (error as Error).message;
  return { reason: message.split("\n")[0] ?? "unknown network error", transient: false };
}
