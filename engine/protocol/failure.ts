import type { DeploymentStep, StepStatus } from "./events";

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

/**
 * The failure a failed deployment's page leads with (issue 15, item 3): the newest failed step of
 * a service; else the deployment's own failure. The engine writes a failed build's last lines,
 * and the last 20 lines a release printed before failing its health check, into the message of
 * the failed step (engine/runtime), so nothing else needs to be read. Shared by the dashboard and
 * the CLI.
 */
export function failureOf(events: readonly RecordedEvent[]): Failure | null {
  const failed = [...events].reverse();
  const event =
    failed.find((e) => e.status === "failed" && e.serviceId && e.step !== "deployment" && e.step !== "lease") ??
    failed.find((e) => e.status === "failed" && e.step === "deployment");
  if (!event) return null;
  const [first = "", ...rest] = (event.message ?? "").split("\n");
  const lines = [...rest];
  while (lines.length > 0 && lines.at(-1)!.trim() === "") lines.pop();
  return { serviceId: event.serviceId, step: event.step, summary: first.replace(LEAD_IN, "") || `${event.step} failed`, lines };
}
