"use client";

import { Box, Center, Group, Paper, Stack, Text, Title } from "@mantine/core";
import { IconSailboat } from "@tabler/icons-react";
import type { ReactNode } from "react";
import { MAIN_CONTENT_ID } from "../shell/skip-link";

/** The centered card of the public pages (sign-in, invitations). */
export function AuthFrame({ title, subtitle, children }: { title: string; subtitle?: ReactNode; children: ReactNode }) {
  return (
    <Center mih="100vh" p="md" bg="var(--mantine-color-body)">
      <Box w="100%" maw={420}>
        <Group component="header" gap={8} justify="center" mb="lg">
          <IconSailboat size={30} color="var(--mantine-primary-color-filled)" aria-hidden />
          <Text fw={700} fz="xl" lts={-0.3}>
            Slipway
          </Text>
        </Group>
        <Paper component="main" id={MAIN_CONTENT_ID} tabIndex={-1} withBorder shadow="sm" p="xl" radius="lg">
          <Stack gap="lg">
            <Stack gap={4}>
              <Title order={1} fz={22}>
                {title}
              </Title>
              {subtitle && (
                <Text c="dimmed" fz="sm">
                  {subtitle}
                </Text>
              )}
            </Stack>
            {children}
          </Stack>
        </Paper>
      </Box>
    </Center>
  );
}
