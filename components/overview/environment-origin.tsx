"use client";

import { Anchor, Badge, Group, Text } from "@mantine/core";
import { IconClock, IconCopy, IconGitPullRequest } from "@tabler/icons-react";
import Link from "next/link";
import { RelativeTime } from "../relative-time";
import type { OverviewEnvironment } from "./use-overview";

/** Where a temporary environment comes from and when it goes: its source (or pull request) and its expiry. */
export function EnvironmentOrigin({ environment, projectName }: { environment: OverviewEnvironment; projectName: string }) {
  const { clonedFrom, preview, expiresAt } = environment;
  if (!clonedFrom && !preview && !expiresAt) return null;
  const sourceName = clonedFrom && (clonedFrom.projectName === projectName ? clonedFrom.name : `${clonedFrom.projectName} / ${clonedFrom.name}`);
  return (
    <Group gap="md" wrap="wrap">
      {preview && (
        <Badge variant="light" color="violet" size="sm" leftSection={<IconGitPullRequest size={12} aria-hidden />}>
          PR #{preview.number} · {preview.headBranch}
        </Badge>
      )}
      {clonedFrom && (
        <Group gap={4} wrap="nowrap">
          <IconCopy size={14} aria-hidden />
          <Text fz="xs" c="dimmed">
            {preview ? "Preview of" : "Cloned from"}{" "}
            <Anchor component={Link} href={`/environments/${clonedFrom.id}`} fz="xs">
              {sourceName}
            </Anchor>
          </Text>
        </Group>
      )}
      {expiresAt && (
        <Group gap={4} wrap="nowrap">
          <IconClock size={14} aria-hidden />
          <Text fz="xs" c="dimmed">
            Expires <RelativeTime value={expiresAt} />
          </Text>
        </Group>
      )}
    </Group>
  );
}
