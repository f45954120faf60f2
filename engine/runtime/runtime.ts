import type { DeploymentStep, RuntimeServiceState, ServiceSpec } from "../protocol";

/**
 * What orchestration (engine/local-engine.ts: steps, order, events, cancel) needs from a
 * runtime. `local` implements it with processes; docker and kubernetes come later.
 * A step that fails throws StepError with a message naming what failed.
 */
export type StepContext = {
  deploymentId: string;
  service: ServiceSpec;
  signal: AbortSignal;
  /** Build and deploy output of this service (masked and shipped by the caller). */
  output: (fd: "stdout" | "stderr" | "system", text: string) => void;
};

/** A release being deployed; opaque to orchestration apart from its id and commit. */
export type ReleaseHandle = { serviceId: string; releaseId: string; commit?: string };

export interface Runtime {
  start(): Promise<void>;
  shutdown(): Promise<void>;
  services(): RuntimeServiceState[];
  newRelease(ctx: StepContext): Promise<ReleaseHandle>;
  clone(ctx: StepContext, release: ReleaseHandle): Promise<string>;
  build(ctx: StepContext, release: ReleaseHandle): Promise<void>;
  startRelease(ctx: StepContext, release: ReleaseHandle): Promise<void>;
  healthCheck(ctx: StepContext, release: ReleaseHandle): Promise<void>;
  /** Points the router at the release; resolves once the router applied it. */
  switchTo(ctx: StepContext, release: ReleaseHandle): Promise<void>;
  /** Lets the replaced release finish its in-flight requests, then stops it. */
  drain(ctx: StepContext, release: ReleaseHandle): Promise<void>;
  /** Undoes a release that never went live (failed or canceled before the switch). */
  discard(release: ReleaseHandle): Promise<void>;
  stop(ctx: StepContext): Promise<void>;
  restart(ctx: StepContext): Promise<void>;
  delete(ctx: StepContext): Promise<void>;
}

export type ServiceStep = Exclude<DeploymentStep, "deployment" | "lease">;

/** A step failed for a reason the user can act on; its message becomes the event's message. */
export class StepError extends Error {
  override name = "StepError";
}
