"use client";

import { Stack, Text } from "@mantine/core";
import type { ReactNode } from "react";

/** A labelled fact of a service (status, port, last run): small caps label above its value. */
export function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <Stack gap={2}>
      <Text fz="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <div>{children}</div>
    </Stack>
  );
}
