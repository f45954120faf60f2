import { terminalStatuses, type DeploymentStatus } from "../engine/protocol/events";
import type { Deployment, DeploymentEvent, DeploymentRequest, Service } from "./api-types";
import type { ApiClient } from "./client";
import type { Context } from "./context";
import { CliError, exitCodes, type ExitCode } from "./errors";
import { elapsed, firstLine, formatDuration, shortCommit } from "./format";
import { followThroughOutages } from "./reconnect";

/**
 * Following a deployment: poll its events "after the last id seen" (so nothing is printed twice
 * or lost between polls) and its status, one line per step started or finished, until the
 * status is terminal. The status is read before the events: the event that made it terminal is
 * stored in the same transaction, so it is always among the events printed before stopping.
 * Each poll is one step retried through a control-plane outage: it re-reads the status and the
 * events after the last one printed, so a restart of the control plane costs nothing.
 */
const successes: ReadonlySet<DeploymentStatus> = new Set(["DEPLOYED", "STOPPED", "DELETED"]);

export type DeploymentOutputOptions = { watch?: boolean; json?: boolean };

/** What `deploy`, `stop`, `restart` and the delete commands print about the deployment they asked for. */
export async function reportDeployment(ctx: Context, request: DeploymentRequest, what: string, options: DeploymentOutputOptions): Promise<ExitCode> {
  const { deployment, merged } = request;
  if (!options.watch) {
    if (options.json) ctx.printJson(request);
    else ctx.print(`Deployment ${deployment.id} ${deployment.action} ${what}: ${deployment.status}${merged ? " (merged into the queued deployment)" : ""}`);
    return exitCodes.ok;
  }
  if (!options.json) ctx.print(`Deployment ${deployment.id} ${deployment.action} ${what}${merged ? " (merged into the queued deployment)" : ""}`);
  return watchDeployment(ctx, await ctx.api(), deployment, { json: options.json, what });
}

/** `what`: the environment, service … the deployment acts on, as the command named it (for the last line). */
export async function watchDeployment(ctx: Context, api: ApiClient, start: Deployment, options: { json?: boolean; what?: string }): Promise<ExitCode> {
  try {
    return await follow(ctx, api, start, options);
  } catch (error) {
    // Ctrl-C may land mid-request or between polls: either way only the watching stops.
    if (!ctx.aborted) throw error;
    throw new CliError(`stopped watching; deployment ${start.id} goes on (slipway cancel ${start.id} stops it)`, exitCodes.interrupted);
  }
}

async function follow(ctx: Context, api: ApiClient, start: Deployment, options: { json?: boolean; what?: string }): Promise<ExitCode> {
  const step = followThroughOutages(ctx);
  const gone = () => environmentDeletedBy(api, start);
  const names = await step(() => serviceNames(api, start.environmentId).catch(whenGone(gone, new Map<string, string>())));
  let lastEventId = 0;
  let deployment = start;
  for (;;) {
    const polled = await step(async () => {
      const current = await api.get<Deployment>(`/deployments/${deployment.id}`).catch(whenGone(gone, "environment-deleted" as const));
      if (current === "environment-deleted") return current;
      // The environment may go between the two reads: its deletion ended (the status read missed it by a moment).
      const events = await api.get<DeploymentEvent[]>(`/deployments/${current.id}/events`, { after: lastEventId }).catch(whenGone(gone, null));
      return events ? { current, events } : "environment-deleted";
    });
    if (polled === "environment-deleted") {
      if (options.json) ctx.printJsonLine({ ...deployment, status: "DELETED" });
      else
        ctx.print(
          options.what ? `DELETED: environment ${options.what} is gone, with its deployments` : "DELETED: the environment is gone, with its deployments",
        );
      return exitCodes.ok;
    }
    const { current, events } = polled;
    deployment = current;
    for (const event of events) {
      lastEventId = event.id;
      if (options.json) ctx.printJsonLine(event);
      else {
        const line = describeEvent(event, names);
        if (line) ctx.print(line);
      }
    }
    if (terminalStatuses.has(deployment.status)) break;
    if (!(await ctx.pause())) throw new CliError("interrupted", exitCodes.interrupted);
  }
  if (options.json) ctx.printJsonLine(deployment);
  else ctx.print(describeOutcome(deployment));
  return successes.has(deployment.status) ? exitCodes.ok : exitCodes.failure;
}

/**
 * Whether the environment `deployment` deletes as a whole is gone: its deletion succeeded, and
 * took the environment's deployments with it (so the deployment's own 404 is that success).
 * Asked of the environment itself, so that a 404 of anything else is not taken for one.
 */
async function environmentDeletedBy(api: ApiClient, deployment: Deployment): Promise<boolean> {
  if (deployment.action !== "DELETE" || deployment.serviceIds !== null) return false;
  try {
    await api.get(`/environments/${deployment.environmentId}`);
    return false;
  } catch (error) {
    if (isNotFound(error)) return true;
    throw error;
  }
}

/** A catch handler: `value` for a 404 that the environment's deletion explains, else the error again. */
function whenGone<T>(gone: () => Promise<boolean>, value: T): (error: unknown) => Promise<T> {
  return async (error) => {
    if (isNotFound(error) && (await gone())) return value;
    throw error;
  };
}

const isNotFound = (error: unknown) => error instanceof CliError && error.exitCode === exitCodes.notFound;

async function serviceNames(api: ApiClient, environmentId: string): Promise<Map<string, string>> {
  const services = await api.get<Service[]>(`/environments/${environmentId}/services`);
  return new Map(services.map((s) => [s.id, s.name]));
}

/**
 * One line per step: `▸ web build` when it starts, `✓ web clone 1.2s: branch main (commit abc1234)` or
 * `✗ web build: <reason>` when it ends. The deployment's own end is the outcome line instead.
 */
export function describeEvent(event: DeploymentEvent, names: ReadonlyMap<string, string>): string | null {
  const subject = event.serviceId ? `${names.get(event.serviceId) ?? event.serviceId.slice(0, 8)} ${event.step}` : event.step;
  const message = firstLine(event.message);
  if (event.step === "deployment") {
    if (event.status === "started") return "▸ deployment started";
    if (event.status === "requested") return `· ${message || "cancel requested"}`;
    return null;
  }
  switch (event.status) {
    case "started":
      return `▸ ${subject}`;
    case "succeeded": {
      const duration = event.durationMs === null ? "" : ` ${formatDuration(event.durationMs)}`;
      const commit = event.commit ? ` (commit ${shortCommit(event.commit)})` : "";
      // What the step says of itself: the branch a clone took (the repository's default one when the service names none).
      return `✓ ${subject}${duration}${message ? `: ${message}` : ""}${commit}`;
    }
    case "failed":
      return `✗ ${subject}${message ? `: ${message}` : " failed"}`;
    case "canceled":
      return `⊘ ${subject} canceled`;
    case "skipped":
      // What it waited for failed (a stage before it, say): the message says what.
      return `- ${names.get(event.serviceId ?? "") ?? subject}: ${message || "not started"}`;
    case "expired":
      return `! ${subject} expired${message ? `: ${message}` : ""}`;
    default:
      return message ? `· ${subject}: ${message}` : null;
  }
}

/** `DEPLOYED in 34.2s`, `BUILD_ERROR: web build failed (after 12.0s)`. */
export function describeOutcome(deployment: Deployment): string {
  const took = elapsed(deployment.startedAt, deployment.finishedAt);
  if (successes.has(deployment.status)) return `${deployment.status}${took ? ` in ${took}` : ""}`;
  const reason = firstLine(deployment.statusMessage);
  return `${deployment.status}${reason ? `: ${reason}` : ""}${took ? ` (after ${took})` : ""}`;
}
