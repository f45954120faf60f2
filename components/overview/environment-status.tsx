"use client";

import { Anchor, Group, Loader } from "@mantine/core";
import Link from "next/link";
import { StatusBadge } from "../status-badge";
import { inProgressLabel, type InProgress } from "./in-progress";

/**
 * An environment's status, and beside it what deployments of some of its services are doing
 * ("deleting html"): those leave the environment's own status as it is, so a badge never reads
 * "Deleting" for a whole environment when one service is deleted.
 */
export function EnvironmentStatus({ status, inProgress }: { status: string; inProgress: InProgress[] }) {
  return (
    <Group gap={6} component="span" wrap="wrap">
      <StatusBadge status={status} />
      {inProgress.map((deployment) => (
        <Anchor
          key={deployment.deploymentId}
          component={Link}
          href={`/deployments/${deployment.deploymentId}`}
          fz="xs"
          c="dimmed"
          style={{ display: "inline-flex", alignItems: "center", gap: 4 }}
        >
          <Loader size={10} type="oval" aria-hidden />
          {inProgressLabel(deployment)}
        </Anchor>
      ))}
    </Group>
  );
}
