"use client";

import { Badge, Loader, type BadgeProps, type MantineColor } from "@mantine/core";
import type { DeploymentStatus } from "../engine/protocol/events";

/** Runtime states an engine reports for a service's live release. */
export type RuntimeState = "starting" | "running" | "crashed" | "stopped" | "idle" | "sleeping";
/** Aggregate states of an environment with nothing to aggregate. */
export type EmptyState = "EMPTY" | "NEVER_DEPLOYED";
export type AnyStatus = DeploymentStatus | RuntimeState | EmptyState;

type Style = { label: string; color: MantineColor; busy?: boolean };

/** One colour per meaning, everywhere: green live, blue/cyan working, red failed, yellow canceled, gray idle. */
const STYLES: Record<AnyStatus, Style> = {
  QUEUED: { label: "Queued", color: "gray", busy: true },
  BUILDING: { label: "Building", color: "blue", busy: true },
  DEPLOYING: { label: "Deploying", color: "cyan", busy: true },
  DEPLOYED: { label: "Deployed", color: "green" },
  STOPPING: { label: "Stopping", color: "orange", busy: true },
  STOPPED: { label: "Stopped", color: "gray" },
  DELETING: { label: "Deleting", color: "orange", busy: true },
  DELETED: { label: "Deleted", color: "dark" },
  BUILD_ERROR: { label: "Build error", color: "red" },
  DEPLOYMENT_ERROR: { label: "Deployment error", color: "red" },
  CANCELING: { label: "Canceling", color: "yellow", busy: true },
  CANCELED: { label: "Canceled", color: "yellow" },
  EMPTY: { label: "No services", color: "gray" },
  NEVER_DEPLOYED: { label: "Never deployed", color: "gray" },
  starting: { label: "Starting", color: "blue", busy: true },
  running: { label: "Running", color: "green" },
  crashed: { label: "Crashed", color: "red" },
  stopped: { label: "Stopped", color: "gray" },
  idle: { label: "Idle", color: "teal" },
  sleeping: { label: "Sleeping", color: "indigo" },
};

export function statusStyle(status: string): Style {
  return STYLES[status as AnyStatus] ?? { label: status, color: "gray" };
}

/** True while a deployment is still moving (not in a terminal status). */
export function isBusy(status: string): boolean {
  return statusStyle(status).busy === true;
}

export type StatusBadgeProps = { status: AnyStatus | (string & {}) } & Omit<BadgeProps, "color" | "children">;

/** The badge for a deployment status, a runtime state or an environment's aggregate status. */
export function StatusBadge({ status, size = "sm", ...props }: StatusBadgeProps) {
  const style = statusStyle(status);
  return (
    <Badge
      color={style.color}
      variant="light"
      size={size}
      leftSection={style.busy ? <Loader size={10} color={style.color} type="oval" aria-hidden /> : undefined}
      data-status={status}
      // A status is read whole: the badge never shrinks to "RUNN…" in a narrow row.
      style={{ flexShrink: 0, minWidth: "max-content" }}
      {...props}
    >
      {style.label}
    </Badge>
  );
}
