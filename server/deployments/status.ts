import type { DeploymentStatus, DeploymentStep, StepStatus } from "../../engine/protocol/events";
import { terminalStatuses } from "../../engine/protocol/events";
import type { DeploymentAction } from "../../engine/protocol/snapshot";
import { phaseOf } from "../../engine/protocol/steps";

type EventLike = { step: DeploymentStep; status: StepStatus; message?: string | null; at: Date; serviceId?: string | null };

export type Projection = {
  status: DeploymentStatus;
  message: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
};

/** The status a deployment shows while a service is in a step of this phase (engine/protocol/steps.ts). */
export const phaseStatus = { build: "BUILDING", deploy: "DEPLOYING", stop: "STOPPING", delete: "DELETING" } as const;

const runningStatus: Record<DeploymentAction, DeploymentStatus> = {
  DEPLOY: "BUILDING",
  RESTART: "DEPLOYING",
  STOP: "STOPPING",
  DELETE: "DELETING",
};
const successStatus: Record<DeploymentAction, DeploymentStatus> = {
  DEPLOY: "DEPLOYED",
  RESTART: "DEPLOYED",
  STOP: "STOPPED",
  DELETE: "DELETED",
};

type Phase = keyof typeof phaseStatus;

/** The statuses of the `deployment` step that end a deployment (apply, below). */
const endingStatuses: ReadonlySet<StepStatus> = new Set(["succeeded", "failed", "canceled"]);

/**
 * Whether recording this event ends the deployment (unless it had ended): known before the
 * events are stored, so that a batch that ends one is recorded under its environment's lock.
 */
export function endsDeployment(event: Pick<EventLike, "step" | "status">): boolean {
  return event.step === "deployment" && endingStatuses.has(event.status);
}

/**
 * The status of a deployment, folded from its events in the order they were recorded. This is
 * the only place a deployment status is decided; the `status` column is a cache of it.
 *
 * Services of a stage run side by side (issue 16), so their steps interleave: the status follows
 * the steps under way, BUILDING while any service builds, else the phase of the latest one.
 */
export function projectDeployment(action: DeploymentAction, events: readonly EventLike[]): Projection {
  let projection: Projection = { status: "QUEUED", message: null, startedAt: null, finishedAt: null };
  let lastFailedStep: DeploymentStep | null = null;
  const underWay = new Map<string, Phase>();
  for (const event of events) {
    if (terminalStatuses.has(projection.status)) break;
    if (event.status === "failed" && event.step !== "deployment") lastFailedStep = event.step;
    const phase = phaseOf(event.step);
    if (phase) {
      const key = `${event.serviceId ?? ""}:${event.step}`;
      // Re-added last, so that the newest step under way is the map's last entry.
      underWay.delete(key);
      if (event.status === "started") underWay.set(key, phase);
    }
    projection = apply(projection, action, event, lastFailedStep, underWay);
  }
  return projection;
}

/** The phase the deployment shows for the steps under way; null when none is. */
function currentPhase(underWay: ReadonlyMap<string, Phase>): Phase | null {
  const phases = [...underWay.values()];
  return phases.includes("build") ? "build" : (phases.at(-1) ?? null);
}

function apply(
  current: Projection,
  action: DeploymentAction,
  event: EventLike,
  lastFailedStep: DeploymentStep | null,
  underWay: ReadonlyMap<string, Phase>,
): Projection {
  const canceling = current.status === "CANCELING";
  const next = (status: DeploymentStatus, message: string | null = current.message): Projection => ({ ...current, status, message });
  if (event.step === "deployment") {
    switch (event.status) {
      case "started":
        return { ...next(canceling ? "CANCELING" : runningStatus[action]), startedAt: current.startedAt ?? event.at };
      case "succeeded":
        return { ...next(successStatus[action], event.message ?? null), finishedAt: event.at };
      case "failed": {
        const status = lastFailedStep && phaseOf(lastFailedStep) === "build" ? "BUILD_ERROR" : "DEPLOYMENT_ERROR";
        return { ...next(status, event.message ?? "deployment failed"), finishedAt: event.at };
      }
      case "canceled":
        return { ...next("CANCELED", event.message ?? "canceled"), finishedAt: event.at };
      case "requested":
        return next("CANCELING", event.message ?? "cancel requested");
      default:
        return current;
    }
  }
  const phase = currentPhase(underWay);
  if (canceling || !phase) return current;
  return next(phaseStatus[phase]);
}
