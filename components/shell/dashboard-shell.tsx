"use client";

import {
  ActionIcon,
  AppShell,
  Badge,
  Burger,
  Button,
  Center,
  Group,
  Loader,
  Menu,
  NavLink,
  ScrollArea,
  Stack,
  Text,
  UnstyledButton,
  useComputedColorScheme,
  useMantineColorScheme,
  VisuallyHidden,
  type MantineColorScheme,
} from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import {
  IconBuildingSkyscraper,
  IconCheck,
  IconChevronDown,
  IconDeviceDesktop,
  IconDevicesOff,
  IconGitBranch,
  IconHistory,
  IconKey,
  IconLayoutDashboard,
  IconLogout,
  IconMoon,
  IconPlus,
  IconSailboat,
  IconServer2,
  IconSun,
  IconUsers,
} from "@tabler/icons-react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { signOut } from "next-auth/react";
import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { useEffect, useRef, type ReactNode } from "react";
import { SignOutEverywhereModal } from "../account/sign-out-everywhere";
import { useWhoami, type Role } from "../auth/can";
import { RoleBadge } from "../auth/role-badge";
import { isUnauthorized } from "../errors";
import { CreateOrganizationModal } from "../organizations/create-organization";
import { NoOrganization } from "../organizations/no-organization";
import { useSwitchOrganization } from "../organizations/use-switch-organization";
import { useTRPC } from "../trpc";
import { MAIN_CONTENT_ID } from "./skip-link";

const NAV: { label: string; href: string; icon: ReactNode; section?: string }[] = [
  { label: "Overview", href: "/", icon: <IconLayoutDashboard size={18} /> },
  { label: "Clusters", href: "/clusters", icon: <IconServer2 size={18} /> },
  { label: "Audit log", href: "/audit", icon: <IconHistory size={18} /> },
  { label: "Organization", href: "/settings/organization", icon: <IconBuildingSkyscraper size={18} />, section: "Settings" },
  { label: "Members", href: "/settings/members", icon: <IconUsers size={18} />, section: "Settings" },
  { label: "API tokens", href: "/settings/tokens", icon: <IconKey size={18} />, section: "Settings" },
  { label: "Git", href: "/settings/git", icon: <IconGitBranch size={18} />, section: "Settings" },
];

/** An organization whose deletion was asked for: its environments are being deleted, then it goes. */
function DeletingBadge() {
  return (
    <Badge color="red" variant="light" size="sm" style={{ flexShrink: 0, minWidth: "max-content" }}>
      deleting
    </Badge>
  );
}

function OrganizationSwitcher({ currentId }: { currentId: string }) {
  const trpc = useTRPC();
  const switchTo = useSwitchOrganization();
  const [creating, createModal] = useDisclosure();
  const mine = useQuery(trpc.organization.mine.queryOptions({}, { staleTime: 60_000 }));
  const current = mine.data?.find((organization) => organization.organizationId === currentId);
  return (
    <>
      <CreateOrganizationModal opened={creating} onClose={createModal.close} onCreated={switchTo} />
      <Menu position="bottom-start" width={260} withinPortal>
        <Menu.Target>
          <Button
            variant="subtle"
            color="gray"
            rightSection={<IconChevronDown size={14} />}
            leftSection={<IconBuildingSkyscraper size={16} />}
            aria-label={`Organization: ${current?.name ?? "loading"}. Switch organization`}
          >
            <Text fz="sm" fw={600} truncate maw={180}>
              {current?.name ?? "Organization"}
            </Text>
          </Button>
        </Menu.Target>
        <Menu.Dropdown>
          <Menu.Label>Organizations</Menu.Label>
          {(mine.data ?? []).map((organization) => (
            <Menu.Item
              key={organization.organizationId}
              onClick={() => void switchTo(organization.organizationId)}
              rightSection={
                <Group gap={4} wrap="nowrap">
                  {organization.deletingAt && <DeletingBadge />}
                  {organization.organizationId === currentId ? <IconCheck size={14} aria-label="current" /> : <RoleBadge role={organization.role} />}
                </Group>
              }
            >
              {organization.name}
            </Menu.Item>
          ))}
          {mine.isLoading && <Menu.Item disabled>Loading…</Menu.Item>}
          <Menu.Divider />
          <Menu.Item leftSection={<IconPlus size={14} />} onClick={createModal.open}>
            New organization
          </Menu.Item>
        </Menu.Dropdown>
      </Menu>
    </>
  );
}

const SCHEMES: { value: MantineColorScheme; label: string; icon: ReactNode }[] = [
  { value: "light", label: "Light", icon: <IconSun size={16} /> },
  { value: "dark", label: "Dark", icon: <IconMoon size={16} /> },
  { value: "auto", label: "Match system", icon: <IconDeviceDesktop size={16} /> },
];

function ColorSchemeMenu() {
  const { colorScheme, setColorScheme } = useMantineColorScheme();
  const computed = useComputedColorScheme("light");
  return (
    <Menu position="bottom-end" withinPortal>
      <Menu.Target>
        <ActionIcon variant="default" size="lg" aria-label="Color scheme">
          {computed === "dark" ? <IconMoon size={18} /> : <IconSun size={18} />}
        </ActionIcon>
      </Menu.Target>
      <Menu.Dropdown>
        <Menu.Label>Color scheme</Menu.Label>
        {SCHEMES.map((scheme) => (
          <Menu.Item
            key={scheme.value}
            leftSection={scheme.icon}
            rightSection={colorScheme === scheme.value ? <IconCheck size={14} aria-label="selected" /> : null}
            onClick={() => setColorScheme(scheme.value)}
          >
            {scheme.label}
          </Menu.Item>
        ))}
      </Menu.Dropdown>
    </Menu>
  );
}

function UserMenu({ actor, role }: { actor: string; role: Role }) {
  const [endingAll, endAll] = useDisclosure();
  return (
    <>
      <SignOutEverywhereModal opened={endingAll} onClose={endAll.close} />
      <Menu position="bottom-end" width={240} withinPortal>
        <Menu.Target>
          {/* Named by what it shows ("Account: <email> <role>"), so the name contains the visible text (WCAG 2.5.3); phones show only the role. */}
          <UnstyledButton px="xs" py={4} style={{ borderRadius: "var(--mantine-radius-md)" }}>
            <Group gap={8} wrap="nowrap">
              <VisuallyHidden>Account: </VisuallyHidden>
              <Text fz="sm" truncate maw={200} visibleFrom="sm">
                {actor}
              </Text>
              <VisuallyHidden hiddenFrom="sm">{actor}</VisuallyHidden>
              <RoleBadge role={role} />
              <IconChevronDown size={14} />
            </Group>
          </UnstyledButton>
        </Menu.Target>
        <Menu.Dropdown>
          <Menu.Label>Signed in as</Menu.Label>
          <Stack gap={4} px="sm" pb="xs">
            <Text fz="sm" fw={500} className="break-anywhere">
              {actor}
            </Text>
            <Group gap={6}>
              <Text fz="xs" c="dimmed">
                Role
              </Text>
              <RoleBadge role={role} />
            </Group>
          </Stack>
          <Menu.Divider />
          <Menu.Item leftSection={<IconLogout size={16} />} color="red" onClick={() => void signOut({ redirectTo: "/signin" })}>
            Sign out
          </Menu.Item>
          <Menu.Item leftSection={<IconDevicesOff size={16} />} color="red" onClick={endAll.open}>
            Sign out everywhere
          </Menu.Item>
        </Menu.Dropdown>
      </Menu>
    </>
  );
}

/**
 * The session can end while this tab stays open: signed out in another tab, or everywhere from
 * another device. A move within the dashboard loads no page (the server's sign-in redirect never
 * runs) and `whoami` is cached, so each one asks again who is signed in: a session that ended then
 * goes to the sign-in page (DashboardShell) instead of the cached dashboard.
 */
function useSessionCheckOnNavigation(pathname: string) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const shown = useRef(pathname);
  useEffect(() => {
    if (shown.current === pathname) return;
    shown.current = pathname;
    void queryClient.invalidateQueries({ queryKey: trpc.organization.whoami.queryKey({}) });
  }, [pathname, queryClient, trpc]);
}

function isActive(pathname: string, href: string): boolean {
  if (href === "/") return pathname === "/" || /^\/(projects|environments|services|deployments)\//.test(pathname);
  return pathname === href || pathname.startsWith(`${href}/`);
}

/**
 * The dashboard's frame: navigation, organization switcher, colour scheme and account menu.
 * It also guards the pages: without a session, `whoami` answers 401 and we go to /signin.
 */
export function DashboardShell({ children }: { children: ReactNode }) {
  const [opened, { toggle, close }] = useDisclosure();
  const pathname = usePathname();
  const router = useRouter();
  const whoami = useWhoami();
  const trpc = useTRPC();
  // No actor: either no session (to the sign-in page), or a signed-in user who belongs to no organization yet.
  const noActor = isUnauthorized(whoami.error);
  const account = useQuery({ ...trpc.instance.account.queryOptions({}), enabled: noActor, retry: false });
  const unauthorized = noActor && isUnauthorized(account.error);

  useEffect(() => {
    if (unauthorized) router.replace("/signin");
  }, [unauthorized, router]);
  useEffect(close, [pathname, close]);
  useSessionCheckOnNavigation(pathname);

  if (noActor && account.data) return <NoOrganization email={account.data.email} />;
  if (!whoami.data) {
    return (
      <Center component="main" id={MAIN_CONTENT_ID} tabIndex={-1} mih="100vh">
        {whoami.error && !unauthorized ? (
          <Stack align="center" gap="xs">
            <Text fw={600}>The control plane did not answer.</Text>
            <Text c="dimmed" fz="sm">
              {whoami.error.message}
            </Text>
            <Button variant="default" onClick={() => void whoami.refetch()}>
              Try again
            </Button>
          </Stack>
        ) : (
          <Loader role="status" aria-label="Loading" />
        )}
      </Center>
    );
  }

  let lastSection: string | undefined;
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 232, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="lg">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="xs" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={opened ? "Close navigation" : "Open navigation"} />
            <Link href="/" style={{ textDecoration: "none", color: "inherit" }} aria-label="Slipway home">
              <Group gap={6} wrap="nowrap">
                <IconSailboat size={24} color="var(--mantine-primary-color-filled)" aria-hidden />
                <Text fw={700} fz="lg" lts={-0.3} visibleFrom="xs">
                  Slipway
                </Text>
              </Group>
            </Link>
            <Text c="dimmed" visibleFrom="sm" aria-hidden>
              /
            </Text>
            <OrganizationSwitcher currentId={whoami.data.organizationId} />
          </Group>
          <Group gap="xs" wrap="nowrap">
            <ColorSchemeMenu />
            <UserMenu actor={whoami.data.actor} role={whoami.data.role} />
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="sm" aria-label="Main navigation">
        <AppShell.Section grow component={ScrollArea}>
          <Stack gap={2}>
            {NAV.map((item) => {
              const heading = item.section && item.section !== lastSection ? item.section : null;
              lastSection = item.section;
              return (
                <div key={item.href}>
                  {heading && (
                    <Text fz="xs" fw={600} c="dimmed" tt="uppercase" px="sm" pt="md" pb={4}>
                      {heading}
                    </Text>
                  )}
                  <NavLink
                    component={Link}
                    href={item.href}
                    label={item.label}
                    leftSection={item.icon}
                    active={isActive(pathname, item.href)}
                    aria-current={isActive(pathname, item.href) ? "page" : undefined}
                    style={{ borderRadius: "var(--mantine-radius-md)" }}
                  />
                </div>
              );
            })}
          </Stack>
        </AppShell.Section>
      </AppShell.Navbar>
      <AppShell.Main id={MAIN_CONTENT_ID} tabIndex={-1}>
        <div style={{ maxWidth: 1200, margin: "0 auto" }}>{children}</div>
      </AppShell.Main>
    </AppShell>
  );
}
