"use client";

import { ActionIcon, Code, CopyButton, Group, Text, Tooltip, type ActionIconProps } from "@mantine/core";
import { IconCheck, IconCopy } from "@tabler/icons-react";
import { shortSha } from "./deployments/format";

/**
 * A copy-to-clipboard button named for what it copies ("Copy URL"), with a tooltip that says so
 * and says "Copied" after a click (issue 15, item 8).
 */
export function CopyAction({
  value,
  label,
  tooltip = `Copy ${label}`,
  size = "sm",
  variant = "subtle",
}: {
  value: string;
  /** What is copied, as the accessible name reads it: "URL" gives "Copy URL". */
  label: string;
  tooltip?: string;
  size?: ActionIconProps["size"];
  variant?: ActionIconProps["variant"];
}) {
  const icon = size === "lg" ? 16 : 14;
  return (
    <CopyButton value={value} timeout={2000}>
      {({ copied, copy }) => (
        <Tooltip label={copied ? "Copied" : tooltip} withArrow>
          <ActionIcon
            variant={variant}
            size={size}
            color={copied ? "teal" : "gray"}
            onClick={(event) => {
              // A copy inside a clickable row (the deployment history) copies, and nothing else.
              event.stopPropagation();
              copy();
            }}
            aria-label={`Copy ${label}`}
          >
            {copied ? <IconCheck size={icon} /> : <IconCopy size={icon} />}
          </ActionIcon>
        </Tooltip>
      )}
    </CopyButton>
  );
}

/** A commit as the dashboard shows it: the short SHA to read, the full one to copy. */
export function CommitSha({ sha }: { sha: string }) {
  const short = shortSha(sha);
  return (
    <Group gap={2} wrap="nowrap" display="inline-flex">
      <Code title={sha}>{short}</Code>
      <CopyAction value={sha} label={`commit ${short}`} tooltip="Copy the full SHA" size="xs" />
    </Group>
  );
}

/** A variable's key, in monospace, with a button that copies it ("Copy DATABASE_URL"). */
export function CopyableKey({ value }: { value: string }) {
  return (
    <Group gap={4} wrap="nowrap">
      <Text ff="monospace" fz="sm" className="break-anywhere">
        {value}
      </Text>
      <CopyAction value={value} label={value} tooltip="Copy the key" size="xs" />
    </Group>
  );
}
