"use client";

import { Anchor, Group, Table, Text, Tooltip, VisuallyHidden } from "@mantine/core";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { CommitSha } from "../copy-button";
import { RelativeTime, useNow } from "../relative-time";
import { StatusBadge, isBusy } from "../status-badge";
import { deploymentDurationMs, formatDuration, shortSha, triggerSummary } from "./format";
import { RollbackButton } from "./rollback-button";
import type { Deployment } from "./steps";
import { canRollBackTo, deploymentTarget, deploymentTitle, shortId } from "./title";

/** A deployment's commits: the service's own when the history is a service's (F2: not another service's), else the first and how many more. */
function Commits({ commits, serviceId }: { commits: Record<string, string>; serviceId?: string }) {
  if (serviceId) {
    const own = commits[serviceId];
    return own ? <CommitSha sha={own} /> : <Text c="dimmed">—</Text>;
  }
  const shas = [...new Set(Object.values(commits))];
  if (shas.length === 0) return <Text c="dimmed">—</Text>;
  return (
    <Group gap={4} wrap="nowrap">
      <CommitSha sha={shas[0]!} />
      {shas.length > 1 && (
        <Tooltip label={shas.slice(1).map(shortSha).join(", ")} withArrow>
          <Text fz="sm" c="dimmed">
            +{shas.length - 1}
          </Text>
        </Tooltip>
      )}
    </Group>
  );
}

/**
 * Deployment history, newest first; each row opens the deployment. A service's own history
 * (`serviceId`) shows that service's outcome and commit in each deployment (F2 of the newcomer's
 * walkthrough: not a failure of others, nor another service's commit). An earlier success offers "Roll
 * back to this", of `rollbackServiceIds` only when given (a service's own history).
 */
export function DeploymentHistory({
  deployments,
  emptyText,
  serviceId,
  rollbackServiceIds,
}: {
  /** With `outcomes` (the history's list has them): a service's history shows what each did to the service. */
  deployments: (Deployment & { outcomes?: Record<string, Deployment["status"]> })[];
  emptyText: string;
  serviceId?: string;
  rollbackServiceIds?: string[];
}) {
  const router = useRouter();
  const now = useNow(deployments.some((deployment) => isBusy(deployment.status)) ? 1000 : 30_000);
  if (deployments.length === 0) {
    return (
      <Text c="dimmed" size="sm">
        {emptyText}
      </Text>
    );
  }
  return (
    <Table.ScrollContainer minWidth={840} className="stack-on-phone">
      <Table highlightOnHover verticalSpacing="xs" aria-label="Deployment history">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Deployment</Table.Th>
            <Table.Th>Status</Table.Th>
            <Table.Th>Trigger</Table.Th>
            <Table.Th>Actor</Table.Th>
            <Table.Th>Commit</Table.Th>
            <Table.Th>Duration</Table.Th>
            <Table.Th>Created</Table.Th>
            <Table.Th>
              <VisuallyHidden>Actions</VisuallyHidden>
            </Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {deployments.map((deployment) => {
            const href = `/deployments/${deployment.id}`;
            return (
              <Table.Tr
                key={deployment.id}
                data-deployment-id={deployment.id}
                style={{ cursor: "pointer" }}
                onClick={(event) => {
                  // Clicks inside a modal opened from the row bubble through React's tree, not the page's.
                  if (event.currentTarget.contains(event.target as Node)) router.push(href);
                }}
              >
                <Table.Td data-label="Deployment">
                  {deployment.rollbackOf ? (
                    // Two links: the rollback itself, and the deployment it went back to.
                    <Text span fz="sm">
                      <Anchor component={Link} href={href} fw={500} onClick={(event) => event.stopPropagation()}>
                        Roll back {deploymentTarget(deployment)}
                      </Anchor>{" "}
                      to{" "}
                      <Anchor
                        component={Link}
                        href={`/deployments/${deployment.rollbackOf}`}
                        ff="monospace"
                        aria-label={`deployment ${shortId(deployment.rollbackOf)}, rolled back to`}
                        onClick={(event) => event.stopPropagation()}
                      >
                        {shortId(deployment.rollbackOf)}
                      </Anchor>
                    </Text>
                  ) : (
                    <Anchor component={Link} href={href} fw={500} onClick={(event) => event.stopPropagation()}>
                      {deploymentTitle(deployment)}
                    </Anchor>
                  )}
                </Table.Td>
                <Table.Td data-label="Status">
                  <StatusBadge status={(serviceId && deployment.outcomes?.[serviceId]) || deployment.status} />
                </Table.Td>
                <Table.Td data-label="Trigger">{triggerSummary(deployment.trigger)}</Table.Td>
                <Table.Td data-label="Actor">
                  <Text size="sm" truncate maw={160}>
                    {deployment.actor}
                  </Text>
                </Table.Td>
                <Table.Td data-label="Commit">
                  <Commits commits={deployment.commits} serviceId={serviceId} />
                </Table.Td>
                <Table.Td data-label="Duration">{formatDuration(deploymentDurationMs(deployment, now))}</Table.Td>
                <Table.Td data-label="Created">
                  <RelativeTime value={deployment.createdAt} />
                </Table.Td>
                <Table.Td>{canRollBackTo(deployment, deployments) && <RollbackButton deployment={deployment} serviceIds={rollbackServiceIds} />}</Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}
