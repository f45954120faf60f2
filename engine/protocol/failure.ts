import type { DeploymentStep, StepStatus } from "./events";
import type { DeploymentAction } from "./snapshot";

/** What a failure is read from: recorded events, as the API gives them, in the order they were recorded. */
type RecordedEvent = { serviceId: string | null; step: DeploymentStep; status: StepStatus; message: string | null };

/** Why a deployment failed, from its recorded events: the step that failed and the last lines it reported. */
export type Failure = {
  /** Null when the deployment itself failed outside any service's step (a lease that ran out, say). */
  serviceId: string | null;
  step: DeploymentStep;
  /** The first line of the step's message, without its "its last lines:" lead-in. */
  summary: string;
  /** What the engine put after it: the build's last lines, or a release's last runtime output (engine/runtime). */
  lines: string[];
};

const LEAD_IN = /;\s*its last (?:lines|output):\s*$/;

/** The step that ends each action's work on a service: once it succeeded, the service is live (stopped, restarted, deleted). */
const LAST_STEP: Record<DeploymentAction, DeploymentStep> = { DEPLOY: "switch", STOP: "stop", RESTART: "restart", DELETE: "delete" };

/**
 * Why a failed deployment failed (issue 15, item 3): one failure per service whose step failed,
 * in the order they failed (services of a stage run side by side and fail apart); else the
 * deployment's own failure. A step run again after a re-dispatch counts by its last attempt. The
 * engine writes a failed build's last lines, and a release's last output when it failed its
 * health check, into the message of the failed step (engine/runtime/shared/line-tail.ts), so
 * nothing else needs to be read. Shared by the dashboard and the CLI.
 */
export function failuresOf(events: readonly RecordedEvent[]): Failure[] {
  const byService = new Map<string, { order: number; event: RecordedEvent }>();
  const latest = latestByStep(events);
  for (const [index, event] of events.entries()) {
    if (!event.serviceId || event.status !== "failed" || latest.get(stepKey(event)) !== event) continue;
    // A service's newest failed step says why; it is listed where it first failed.
    byService.set(event.serviceId, { order: byService.get(event.serviceId)?.order ?? index, event });
  }
  const failed = [...byService.values()].sort((a, b) => a.order - b.order).map(({ event }) => event);
  if (failed.length > 0) return failed.map(toFailure);
  const own = events.findLast((e) => e.status === "failed" && e.step === "deployment");
  return own ? [toFailure(own)] : [];
}

/** What became of the services a deployment acted on, by their recorded events. */
export type ServiceTally = { total: number; failed: string[]; done: number; notStarted: number };

export function tallyServices(action: DeploymentAction, serviceIds: readonly string[], events: readonly RecordedEvent[]): ServiceTally {
  const latest = latestByStep(events);
  const failed = new Set(failuresOf(events).flatMap((failure) => (failure.serviceId ? [failure.serviceId] : [])));
  let done = 0;
  let notStarted = 0;
  for (const id of serviceIds) {
    if (failed.has(id)) continue;
    const steps = [...latest.values()].filter((event) => event.serviceId === id);
    if (steps.some((event) => event.step === LAST_STEP[action] && event.status === "succeeded")) done += 1;
    else if (steps.length === 0 || steps.some((event) => event.status === "skipped")) notStarted += 1;
  }
  return { total: serviceIds.length, failed: [...failed], done, notStarted };
}

const DONE: Record<DeploymentAction, [one: string, many: string]> = {
  DEPLOY: ["is live", "are live"],
  STOP: ["stopped", "stopped"],
  RESTART: ["restarted", "restarted"],
  DELETE: ["deleted", "deleted"],
};

/**
 * A failed deployment in one line, the same in the dashboard and the CLI:
 * "2 of 7 services failed: flask, upload; 5 are live" (", 1 not started" when some never started).
 */
export function describeTally(action: DeploymentAction, tally: ServiceTally, name: (serviceId: string) => string): string {
  const [one, many] = DONE[action];
  const failed = `${tally.failed.length} of ${tally.total} service${tally.total === 1 ? "" : "s"} failed: ${tally.failed.map(name).join(", ")}`;
  const rest = [`${tally.done} ${tally.done === 1 ? one : many}`, ...(tally.notStarted > 0 ? [`${tally.notStarted} not started`] : [])];
  return `${failed}; ${rest.join(", ")}`;
}

function toFailure(event: RecordedEvent): Failure {
  const [first = "", ...rest] = (event.message ?? "").split("\n");
  const lines = [...rest];
  while (lines.length > 0 && lines.at(-1)!.trim() === "") lines.pop();
  return { serviceId: event.serviceId, step: event.step, summary: first.replace(LEAD_IN, "") || `${event.step} failed`, lines };
}

const stepKey = (event: RecordedEvent) => `${event.serviceId ?? ""}:${event.step}`;

/** The newest event of each service's step: a step run again after a re-dispatch shows its last attempt. */
function latestByStep(events: readonly RecordedEvent[]): Map<string, RecordedEvent> {
  const latest = new Map<string, RecordedEvent>();
  for (const event of events) if (event.serviceId && event.step !== "deployment" && event.step !== "lease") latest.set(stepKey(event), event);
  return latest;
}
