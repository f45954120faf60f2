import type { Outputs } from "../api-types";
import { statusStyle } from "../status-badge";

export type InProgress = Outputs["organization"]["overview"]["projects"][number]["environments"][number]["inProgress"][number];

/** The most service names a note lists before "and N more". */
const NAMES_SHOWN = 3;

const actionNoun: Record<InProgress["action"], string> = { DEPLOY: "deploy", RESTART: "restart", STOP: "stop", DELETE: "deletion" };

function serviceNames(names: string[]): string {
  if (names.length === 0) return "some services";
  const shown = names.slice(0, NAMES_SHOWN).join(", ");
  return names.length > NAMES_SHOWN ? `${shown} and ${names.length - NAMES_SHOWN} more` : shown;
}

/**
 * What a deployment of some of an environment's services says beside the environment's status:
 * "deleting html", "building vite", "deploy of vite queued". The environment's own status stays
 * as it was (server/overview/live-status.ts, speaksForEnvironment).
 */
export function inProgressLabel({ action, status, services }: Pick<InProgress, "action" | "status" | "services">): string {
  const names = serviceNames(services);
  if (status === "QUEUED") return `${actionNoun[action]} of ${names} queued`;
  if (status === "CANCELING") return `canceling the ${actionNoun[action]} of ${names}`;
  return `${statusStyle(status).label.toLowerCase()} ${names}`;
}
