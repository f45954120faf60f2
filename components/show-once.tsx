"use client";

import { Alert, Code, Group, Stack, Text } from "@mantine/core";
import { IconAlertTriangle } from "@tabler/icons-react";
import { CopyAction } from "./copy-button";

/** A value with a copy button: tokens, commands, invite links. */
export function CopyField({ value, label }: { value: string; label: string }) {
  return (
    <Group gap="xs" wrap="nowrap" align="flex-start">
      <Code block style={{ flex: 1, wordBreak: "break-all", whiteSpace: "pre-wrap" }} aria-label={label}>
        {value}
      </Code>
      <CopyAction value={value} label={label} size="lg" variant="light" />
    </Group>
  );
}

/** A secret that will not be shown again (API token, engine token, invite link), with the warning that says so. */
export function ShowOnce({ value, label, warning }: { value: string; label: string; warning?: string }) {
  return (
    <Stack gap="sm">
      <Alert color="yellow" icon={<IconAlertTriangle size={18} />} title="Copy it now">
        <Text fz="sm">{warning ?? "It is shown only this once: Slipway keeps a hash of it, not the value."}</Text>
      </Alert>
      <CopyField value={value} label={label} />
    </Stack>
  );
}
