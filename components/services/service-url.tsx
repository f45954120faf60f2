"use client";

import { Anchor, Group } from "@mantine/core";
import { IconExternalLink } from "@tabler/icons-react";
import { CopyAction } from "../copy-button";

/** Where a service answers: the link (without its scheme, to save room) and a button that copies the whole URL. */
export function ServiceUrl({ url, serviceName }: { url: string; /** Where several are listed: "Copy URL of web". */ serviceName?: string }) {
  return (
    <Group gap={4} wrap="nowrap">
      <Anchor href={url} target="_blank" rel="noreferrer" fz="sm" className="break-anywhere">
        {url.replace(/^https?:\/\//, "")} <IconExternalLink size={12} aria-label="opens in a new tab" />
      </Anchor>
      <CopyAction value={url} label={serviceName ? `URL of ${serviceName}` : "URL"} size="xs" />
    </Group>
  );
}
