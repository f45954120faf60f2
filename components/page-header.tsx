"use client";

import { Anchor, Box, Breadcrumbs, Group, Stack, Text, Title } from "@mantine/core";
import Link from "next/link";
import type { ReactNode } from "react";

export type Crumb = { label: string; href?: string };

type Place = { project: { id: string; name: string }; environment: { id: string; name: string } };

/** Overview / Project / Environment, the trail above every page inside an environment. */
export function environmentCrumbs(place: Place | null, fallback: Crumb[] = []): Crumb[] {
  return [
    { label: "Overview", href: "/" },
    ...(place
      ? [
          { label: place.project.name, href: `/projects/${place.project.id}` },
          { label: place.environment.name, href: `/environments/${place.environment.id}` },
        ]
      : fallback),
  ];
}

/**
 * The top of every dashboard page: where you are (Project / Environment / Service), the page's
 * name as its one `<h1>`, a line of context, and the page's main actions on the right.
 */
export function PageHeader({
  title,
  crumbs,
  description,
  badges,
  actions,
}: {
  title: string;
  crumbs?: Crumb[];
  description?: ReactNode;
  badges?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <Stack gap={6} mb="lg">
      {crumbs && crumbs.length > 0 && (
        <Box component="nav" aria-label="Breadcrumb">
          <Breadcrumbs separatorMargin={6} fz="sm">
            {crumbs.map((crumb) =>
              crumb.href ? (
                <Anchor key={crumb.label + crumb.href} component={Link} href={crumb.href} c="dimmed" fz="sm">
                  {crumb.label}
                </Anchor>
              ) : (
                <Text key={crumb.label} c="dimmed" fz="sm">
                  {crumb.label}
                </Text>
              ),
            )}
          </Breadcrumbs>
        </Box>
      )}
      <Group justify="space-between" align="flex-start" wrap="wrap" gap="sm">
        <Group gap="sm" align="center">
          <Title order={1} fz={26} fw={650} lts={-0.3}>
            {title}
          </Title>
          {badges}
        </Group>
        {actions && <Group gap="xs">{actions}</Group>}
      </Group>
      {description && (
        <Text c="dimmed" fz="sm">
          {description}
        </Text>
      )}
    </Stack>
  );
}

/** A titled block of a page (an `<h2>` with optional actions), so pages read the same. */
export function Section({ title, description, actions, children }: { title: string; description?: ReactNode; actions?: ReactNode; children: ReactNode }) {
  return (
    <Box component="section" mb="xl">
      <Group justify="space-between" align="flex-end" mb="sm" wrap="wrap" gap="xs">
        <Box>
          <Title order={2} fz="lg" fw={600}>
            {title}
          </Title>
          {description && (
            <Text c="dimmed" fz="sm">
              {description}
            </Text>
          )}
        </Box>
        {actions && <Group gap="xs">{actions}</Group>}
      </Group>
      {children}
    </Box>
  );
}
