"use client";

import { Badge } from "@mantine/core";
import { modeColor, type EnvironmentMode } from "../api-types";

export function ModeBadge({ mode }: { mode: EnvironmentMode }) {
  return (
    <Badge color={modeColor(mode)} variant="outline" size="sm" radius="sm">
      {mode.toLowerCase()}
    </Badge>
  );
}
