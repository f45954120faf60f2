import type { inferRouterOutputs } from "@trpc/server";
import { stepsOf } from "../../engine/protocol/steps";
import type { AppRouter } from "../../server/api/root";

type Outputs = inferRouterOutputs<AppRouter>;
export type Deployment = Outputs["deployments"]["get"];
export type DeploymentEvent = Outputs["deployments"]["events"][number];
export type Action = Deployment["action"];
export type StepName = DeploymentEvent["step"];

/** What a user sees per step; derived from events, never stored (DESIGN.md, "Event"). */
export type StepState = "pending" | "running" | "succeeded" | "failed" | "canceled" | "skipped";

export type StepView = {
  step: StepName;
  state: StepState;
  /** The engine's measure when the step ended; null while it runs (show the elapsed time from startedAt). */
  durationMs: number | null;
  startedAt: string | null;
  message: string | null;
};

/** A service's steps, with the stage it deploys in (issue 16). */
export type ServiceSteps = { serviceId: string; stage: string | null; commit: string | null; steps: StepView[] };

export type Note = { id: number; at: string; message: string };

export type StepperModel = {
  services: ServiceSteps[];
  /** Lease expiries and re-dispatches: the deployment was handed to an engine again. */
  notes: Note[];
  /** The deployment-level events (queued, started, cancel requested, outcome), in order. */
  timeline: DeploymentEvent[];
};

type Kind = "APPLICATION" | "CONTAINER" | "DATABASE" | "JOB";

/**
 * The steps a service of this kind goes through, from the engine's own plan (a JOB's "run"
 * shows once it starts: only lifecycle jobs run). An unknown kind shows an application's.
 */
export function stepNamesOf(action: Action, kind: Kind | undefined): StepName[] {
  return [...stepsOf(action, kind ?? "APPLICATION")];
}

export const STEP_LABELS: Record<StepName, string> = {
  deployment: "Deployment",
  lease: "Lease",
  clone: "Clone",
  build: "Build",
  start: "Start",
  health_check: "Health check",
  switch: "Switch traffic",
  drain: "Drain old release",
  run: "Run job",
  stop: "Stop",
  restart: "Restart",
  delete: "Delete",
};

const TERMINAL = new Set(["DEPLOYED", "STOPPED", "DELETED", "BUILD_ERROR", "DEPLOYMENT_ERROR", "CANCELED"]);
export function isTerminal(status: string): boolean {
  return TERMINAL.has(status);
}

/**
 * Folds a deployment's events (in id order) into per-service steps. The newest event of a step
 * decides its state, so a step run again after a re-dispatch shows its latest attempt. Once the
 * deployment is over, a step still "running" was interrupted: it shows the outcome instead.
 *
 * `serviceIds` lists the services the deployment acts on; they show in the order of its stages
 * (services of a stage run side by side, so their events interleave), then in the order given.
 * Services that only appear in events are added in the order they first appear. A service that
 * never started, because something before it failed, shows all its steps skipped.
 */
export function deriveStepper(
  deployment: Pick<Deployment, "action" | "status" | "commits"> & Partial<Pick<Deployment, "stages">>,
  serviceIds: string[],
  events: readonly DeploymentEvent[],
  kinds: Record<string, Kind> = {},
): StepperModel {
  const order: string[] = [];
  const latest = new Map<string, Map<StepName, { state: StepState; durationMs: number | null; startedAt: string | null; message: string | null }>>();
  const notes: Note[] = [];
  const timeline: DeploymentEvent[] = [];

  const stepsOf = (serviceId: string) => {
    let steps = latest.get(serviceId);
    if (!steps) {
      steps = new Map();
      latest.set(serviceId, steps);
    }
    return steps;
  };

  const eventOrder: string[] = [];
  for (const event of events) {
    if (event.step === "lease") {
      notes.push({ id: event.id, at: event.at, message: event.message ?? `lease ${event.status}` });
      continue;
    }
    if (event.step === "deployment" || !event.serviceId) {
      timeline.push(event);
      continue;
    }
    if (!eventOrder.includes(event.serviceId)) eventOrder.push(event.serviceId);
    const steps = stepsOf(event.serviceId);
    const previous = steps.get(event.step);
    switch (event.status) {
      case "started":
        steps.set(event.step, { state: "running", durationMs: null, startedAt: event.at, message: null });
        break;
      case "succeeded":
      case "failed":
      case "canceled":
      case "skipped":
        steps.set(event.step, { state: event.status, durationMs: event.durationMs, startedAt: previous?.startedAt ?? null, message: event.message });
        break;
      default:
        break;
    }
  }

  const stageOf = new Map((deployment.stages ?? []).flatMap((stage) => stage.serviceIds.map((id) => [id, stage.name] as const)));
  const staged = (deployment.stages ?? []).flatMap((stage) => stage.serviceIds);
  for (const id of [...staged, ...serviceIds, ...eventOrder]) if (!order.includes(id)) order.push(id);

  const over = isTerminal(deployment.status);
  const interrupted: StepState = deployment.status === "CANCELED" ? "canceled" : "failed";
  const services = order.map((serviceId): ServiceSteps => {
    const steps = latest.get(serviceId);
    const skipped = [...(steps?.values() ?? [])].some((step) => step.state === "skipped");
    const names = stepNamesOf(deployment.action, kinds[serviceId]);
    // Steps outside the kind's list (a lifecycle job's "run") come before its last step (switch, stop, delete).
    const extra = [...(steps?.keys() ?? [])].filter((name) => !names.includes(name));
    const stepNames = [...names.slice(0, -1), ...extra, ...names.slice(-1)];
    return {
      serviceId,
      stage: stageOf.get(serviceId) ?? null,
      commit: deployment.commits[serviceId] ?? null,
      steps: stepNames.map((step): StepView => {
        const seen = steps?.get(step);
        if (!seen) return { step, state: skipped ? "skipped" : "pending", durationMs: null, startedAt: null, message: null };
        if (seen.state === "running" && over) return { step, ...seen, state: interrupted };
        return { step, ...seen };
      }),
    };
  });
  return { services, notes, timeline };
}
