"use client";

import { Badge } from "@mantine/core";
import type { Role } from "./can";

const ROLE_COLORS: Record<Role, string> = { OWNER: "grape", ADMIN: "indigo", DEVELOPER: "teal", VIEWER: "gray" };

export function RoleBadge({ role }: { role: Role }) {
  return (
    <Badge color={ROLE_COLORS[role]} variant="light" size="sm" style={{ flexShrink: 0, minWidth: "max-content" }}>
      {role.toLowerCase()}
    </Badge>
  );
}
