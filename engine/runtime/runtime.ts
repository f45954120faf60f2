import type { Duplex } from "node:stream";
import type { ClonedSource, GitPolicy } from "./shared/git";
import type { ApplicationServiceSpec, DiskUsage, JobLifecycleEvent, KubernetesImageBuild, RuntimeServiceState, ServiceKind, ServiceSpec } from "../protocol";

/** Where a step writes its output: the app's stdout and stderr, and the engine's own lines ("system"). */
export type StepOutput = (fd: "stdout" | "stderr" | "system", text: string) => void;

/**
 * What orchestration (engine/orchestrator.ts: steps, order, events, cancel) needs from a
 * runtime. `local` implements it with processes, `docker` with containers through the Docker
 * Engine API, `kubernetes` with objects of the Kubernetes API. A step that fails throws StepError with a message naming
 * what failed.
 *
 * The type parameter is the kind of service a runtime handles: orchestration only hands a
 * runtime the kinds it lists in `serviceKinds` (APPLICATION when it lists none).
 */
export type StepContext<S extends ServiceSpec = ApplicationServiceSpec> = {
  deploymentId: string;
  service: S;
  /** The environment the service belongs to, from the snapshot: the kubernetes runtime's namespace and labels (issue 18). */
  scope?: DeploymentScope;
  signal: AbortSignal;
  /** The cluster is trusted (engineTask.trusted): a runtime that cannot sandbox the service may run it anyway. */
  trusted: boolean;
  /**
   * The cluster fences services off the host's loopback (engineTask.isolateLoopback, issue 13):
   * a runtime that shares the host's network must cut the service off the host's loopback
   * services but for `databasePorts`, or refuse.
   */
  isolateLoopback: boolean;
  /** The deployment asked for builds without the build cache (snapshot.noCache): none is restored, the fresh result is saved. */
  noCache?: boolean;
  /** The TCP ports of the environment's DATABASE services (engine/environment-databases.ts). */
  databasePorts: number[];
  /** Build and deploy output of this service (masked and shipped by the caller). */
  output: StepOutput;
  /** The engine's rules for git sources (engine/runtime/shared/git.ts); absent, local repositories are refused. */
  git?: GitPolicy;
  /** Where the kubernetes runtime builds images of git services (engineTask.kubernetesBuild); absent: in the cluster. */
  kubernetesBuild?: KubernetesImageBuild;
};

/** The organization, project and environment a deployment acts in (from its snapshot). */
export type DeploymentScope = { organizationId: string; project: { id: string; name: string }; environment: { id: string; name: string } };

/**
 * Where a runtime log line was read from, for lines a runtime can read again after an engine
 * restart (a release's log file): `source` names the line the same way every time it is read
 * (the control plane stores a line of a given source once per stream), and `stored` is called
 * once the control plane has stored it (or refused it for good), so the runtime saves how far it
 * read only up to there and a restart loses nothing.
 */
export type LineOrigin = { source: string; stored: () => void };

/** One line of a release's runtime output (stream kind "service"). */
export type ServiceLog = (serviceId: string, releaseId: string, text: string, fd?: "stdout" | "stderr" | "system", at?: string, origin?: LineOrigin) => void;

/** A release being deployed; opaque to orchestration apart from its id and commit. */
export type ReleaseHandle = { serviceId: string; releaseId: string; commit?: string };

/** What a step may add to its `succeeded` event. */
export type StepResult = { message?: string };

/** A JOB run's summary and the outputs it wrote (variables for the services deployed after it). */
export type JobRunResult = { message: string; outputs: Record<string, string> };

/** A process started in a service's live release (a shell): stdin is the writable side, output the readable side. */
export type ExecSession = Duplex & {
  /** Resizes the terminal (tty sessions only). */
  resize(size: { cols: number; rows: number }): Promise<void>;
  /** The process's exit code once it ended (null when the runtime cannot tell). */
  readonly exited: Promise<number | null>;
};
export type ExecOptions = { tty: boolean; env?: Record<string, string>; cols?: number; rows?: number };

/** One metrics sample of a service's live release. */
export type ServiceSample = {
  at: string;
  /** CPU use since the previous sample, in percent of one core (200 = two cores busy). */
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number | null;
  restarts: number;
};

export interface Runtime<S extends ServiceSpec = ApplicationServiceSpec> {
  /** Named in messages ("… are not supported by the docker runtime yet"). */
  readonly name?: string;
  /** The service kinds this runtime deploys; APPLICATION when absent. */
  readonly serviceKinds?: readonly ServiceKind[];
  start(): Promise<void>;
  shutdown(): Promise<void>;
  services(): RuntimeServiceState[];
  newRelease(ctx: StepContext<S>): Promise<ReleaseHandle>;
  /** Only called for the kinds with a repository (APPLICATION and JOB): the commit checked out, and the default branch when the service names no branch. */
  clone(ctx: StepContext<S>, release: ReleaseHandle): Promise<ClonedSource>;
  build(ctx: StepContext<S>, release: ReleaseHandle): Promise<void | StepResult>;
  startRelease(ctx: StepContext<S>, release: ReleaseHandle): Promise<void>;
  healthCheck(ctx: StepContext<S>, release: ReleaseHandle): Promise<void>;
  /** Points the router at the release; resolves once the router applied it. */
  switchTo(ctx: StepContext<S>, release: ReleaseHandle): Promise<void>;
  /** Lets the replaced release finish its in-flight requests, then stops it. */
  drain(ctx: StepContext<S>, release: ReleaseHandle): Promise<void>;
  /** Undoes a release that never went live (failed or canceled before the switch). */
  discard(release: ReleaseHandle): Promise<void>;
  stop(ctx: StepContext<S>): Promise<void>;
  restart(ctx: StepContext<S>): Promise<void>;
  delete(ctx: StepContext<S>): Promise<void>;
  /**
   * Runs a JOB to completion on a lifecycle event: "start" from the release being deployed
   * (`release`), "stop" and "delete" from the release it last deployed (`release` null).
   * Throws StepError when the run fails after its retries.
   */
  runJob?(ctx: StepContext<S>, release: ReleaseHandle | null, trigger: JobLifecycleEvent): Promise<JobRunResult>;
  /** Starts `argv` in the service's live release (shells); runtimes without it cannot open shells. */
  exec?(serviceId: string, argv: string[], options: ExecOptions): Promise<ExecSession>;
  /** The services whose files this runtime keeps, with their size. */
  inventory?(): Promise<DiskUsage[]>;
  /** Stops whatever still runs of these services and removes their files. */
  purge?(serviceIds: string[]): Promise<void>;
  /** A metrics sample of the service's live release. */
  sample?(serviceId: string): Promise<ServiceSample>;
}

export type { ServiceStep } from "../protocol/steps";

/** A step failed for a reason the user can act on; its message becomes the event's message. */
export class StepError extends Error {
  override name = "StepError";
}
