import type { DeploymentStep } from "./events";
import type { DeploymentAction, ServiceKind } from "./snapshot";

/**
 * The deployment step plan: which steps a service goes through for an action, in the order the
 * engine's orchestrator (engine/orchestrator.ts) runs them. The orchestrator, the control
 * plane's status projection (server/deployments/status.ts) and the dashboard's stepper
 * (components/deployments/steps.ts) all read it here, so they cannot disagree.
 */
export type ServiceStep = Exclude<DeploymentStep, "deployment" | "lease">;

const DEPLOY: Record<ServiceKind, readonly ServiceStep[]> = {
  // Built from git, started beside the live release, switched to, and the old one drained.
  APPLICATION: ["clone", "build", "start", "health_check", "switch", "drain"],
  // A CONTAINER's build step makes its image available, a DATABASE's prepares its data directory.
  CONTAINER: ["build", "start", "health_check", "switch", "drain"],
  DATABASE: ["build", "start", "health_check", "switch", "drain"],
  // A job has no server: its release becomes the one its schedule and later events run.
  JOB: ["clone", "build", "switch"],
};

/**
 * The steps of `action` for a service of `kind`. A lifecycle JOB whose trigger names the
 * action's event also has a `run` step, just before the last one (see lifecycleRunEvent).
 */
export function stepsOf(action: DeploymentAction, kind: ServiceKind): readonly ServiceStep[] {
  switch (action) {
    case "DEPLOY":
      return DEPLOY[kind];
    case "STOP":
      return ["stop"];
    case "RESTART":
      return ["restart"];
    case "DELETE":
      return ["delete"];
  }
}

/** The lifecycle event a JOB runs on during `action` ("start" on a deploy), or null when the action runs none. */
export function lifecycleRunEvent(action: DeploymentAction): "start" | "stop" | "delete" | null {
  switch (action) {
    case "DEPLOY":
      return "start";
    case "STOP":
      return "stop";
    case "DELETE":
      return "delete";
    case "RESTART":
      return null;
  }
}

/** What a deployment shows while one of its services is in a step: building, deploying, stopping or deleting. */
export const stepPhase: Record<ServiceStep, "build" | "deploy" | "stop" | "delete"> = {
  clone: "build",
  build: "build",
  start: "deploy",
  health_check: "deploy",
  switch: "deploy",
  drain: "deploy",
  run: "deploy",
  restart: "deploy",
  stop: "stop",
  delete: "delete",
};

/** The phase of any event's step; null for the deployment's own events and its lease's. */
export function phaseOf(step: DeploymentStep): (typeof stepPhase)[ServiceStep] | null {
  return step === "deployment" || step === "lease" ? null : stepPhase[step];
}
