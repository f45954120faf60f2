"use client";

import { Alert, Badge, Button, Card, Group, Modal, NativeSelect, SimpleGrid, Stack, Switch, Text, TextInput, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { IconPlugConnected, IconPlus, IconRefresh, IconServer2, IconShieldOff } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { Inputs, Outputs } from "../api-types";
import { Can } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { apiError } from "../errors";
import { PageHeader } from "../page-header";
import { RelativeTime } from "../relative-time";
import { ShowOnce } from "../show-once";
import { useTRPC } from "../trpc";
import { kubernetesInstallYaml } from "../../engine/protocol/kubernetes-install";
import { useInvalidate } from "../use-invalidate";
import { DialogFormFooter } from "../forms/dialog-form-footer";
import { dockerHostProblem, KubernetesBuildFields, KubernetesBuildSetting, kubernetesBuildOf } from "./kubernetes-build-setting";
import { ApiErrorAlert } from "../api-error-alert";

/** What an ADMIN decides about a cluster's apps (every change is audited). */
const settings = [
  {
    key: "allowLocalRepositories",
    label: "Local repositories",
    description: "Services may be built from file:// URLs and paths on the engine's host (its engine must allow them too)",
  },
  {
    key: "trusted",
    label: "Trusted",
    description: "Where the engine's host cannot sandbox apps, run them anyway: apps on this cluster can then read the engine's files",
  },
  { key: "isolateLoopback", label: "Isolate loopback", description: "Services reach no service of the host on 127.0.0.1 but their environment's databases" },
] as const;

type Cluster = Outputs["clusters"]["list"][number];
type ClusterKind = NonNullable<Inputs["clusters"]["create"]["kind"]>;

type ShownToken = { cluster: string; kind: string; token: string };

/**
 * How the engine is started with its token: on a host, a command (the token in the engine's
 * environment, not its arguments, which every user of the host can read with ps); in a
 * Kubernetes cluster, the objects that install it, the token in their Secret (issue 18).
 */
function engineSetup({ kind, token }: ShownToken): { label: string; value: string; intro: string } {
  if (kind === "kubernetes")
    return {
      label: "Engine manifests",
      value: kubernetesInstallYaml({ controlPlaneUrl: window.location.origin, engineToken: token, image: "slipway-engine:0.1.0" }),
      intro: "Apply these with kubectl apply -f - in the cluster; its engine connects to this control plane and nothing dials into the cluster.",
    };
  return {
    label: "Engine command",
    value: `SLIPWAY_ENGINE_TOKEN=${token} npx slipway engine --url ${window.location.origin}`,
    intro: "Run this on the machine that will run the apps. The engine connects to this control plane; nothing dials into the cluster.",
  };
}

/** The engine command with its token, shown once after a cluster is registered or its token rotated. */
function CommandModal({ shown, onClose }: { shown: ShownToken | null; onClose: () => void }) {
  const setup = shown && engineSetup(shown);
  return (
    <Modal opened={shown !== null} onClose={onClose} title={`Connect an engine to ${shown?.cluster ?? ""}`} size="xl" centered>
      {setup && (
        <Stack>
          <Text fz="sm">{setup.intro}</Text>
          <ShowOnce
            value={setup.value}
            label={setup.label}
            warning="The token in this command is shown only this once. Rotate it to get a new one; the old one then stops working."
          />
          <Group justify="flex-end">
            <Button onClick={onClose}>Done</Button>
          </Group>
        </Stack>
      )}
    </Modal>
  );
}

function capabilityText(value: unknown): string {
  if (typeof value === "string" || typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length === 0 ? "none" : value.map(capabilityText).join(", ");
  return JSON.stringify(value);
}

function ClusterCard({ cluster, onToken }: { cluster: Cluster; onToken: (shown: ShownToken) => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [revoking, revokeModal] = useDisclosure();
  const rotate = useMutation(
    trpc.clusters.rotateToken.mutationOptions({
      onSuccess: async (result) => {
        onToken({ cluster: cluster.name, kind: cluster.kind, token: result.engineToken });
        await invalidate();
      },
    }),
  );
  const revoke = useMutation(trpc.clusters.revokeToken.mutationOptions({ onSuccess: invalidate }));
  const update = useMutation(trpc.clusters.update.mutationOptions({ onSuccess: invalidate }));
  const capabilities = Object.entries(cluster.capabilities);
  const cannotSandbox = cluster.capabilities.sandbox === "none";
  return (
    <Card withBorder padding="lg" component="article" aria-labelledby={`cluster-${cluster.id}`}>
      <Stack gap="sm">
        <Group justify="space-between" wrap="nowrap">
          <Group gap="xs">
            <IconServer2 size={18} aria-hidden />
            <Title order={2} fz="md" id={`cluster-${cluster.id}`}>
              {cluster.name}
            </Title>
            <Badge variant="default" size="sm">
              {cluster.kind}
            </Badge>
          </Group>
          {cluster.tokenRevoked ? (
            <Badge color="red" variant="light">
              Token revoked
            </Badge>
          ) : cluster.connected ? (
            <Badge color="green" variant="dot">
              Connected
            </Badge>
          ) : (
            <Badge color="gray" variant="dot">
              Disconnected
            </Badge>
          )}
        </Group>
        <SimpleGrid cols={3} spacing="xs">
          <Stack gap={0}>
            <Text fz="xs" c="dimmed">
              Last heartbeat
            </Text>
            <Text fz="sm">
              <RelativeTime value={cluster.lastHeartbeatAt} />
            </Text>
          </Stack>
          <Stack gap={0}>
            <Text fz="xs" c="dimmed">
              Engine version
            </Text>
            <Text fz="sm">{cluster.engineVersion ?? "—"}</Text>
          </Stack>
          <Stack gap={0}>
            <Text fz="xs" c="dimmed">
              Domain
            </Text>
            <Text fz="sm" className="break-anywhere">
              *.{cluster.domainSuffix}
            </Text>
          </Stack>
        </SimpleGrid>
        <Stack gap={4}>
          <Text fz="xs" c="dimmed">
            Capabilities
          </Text>
          {capabilities.length === 0 ? (
            <Text fz="sm" c="dimmed">
              Reported when an engine connects.
            </Text>
          ) : (
            <Group gap={6}>
              {capabilities.map(([key, value]) => (
                <Badge key={key} variant="light" color="gray" tt="none" fw={500}>
                  {key}: {capabilityText(value)}
                </Badge>
              ))}
            </Group>
          )}
        </Stack>
        {cannotSandbox && (
          <Alert color={cluster.trusted ? "yellow" : "red"} title={cluster.trusted ? "Apps run without a sandbox" : "Apps are refused"}>
            This cluster&apos;s engine cannot sandbox apps: {capabilityText(cluster.capabilities.sandboxProblem ?? "no reason given")}.{" "}
            {cluster.trusted
              ? "It is trusted, so it runs them anyway: they can read the engine's files."
              : "Install what is missing, or an ADMIN may mark the cluster trusted."}
          </Alert>
        )}
        {settings.map((setting) => (
          <Can
            key={setting.key}
            role="ADMIN"
            fallback={
              <Text fz="sm">
                {setting.label}: {cluster[setting.key] ? "on" : "off"}
                <Text span fz="xs" c="dimmed" display="block">
                  {setting.description}
                </Text>
              </Text>
            }
          >
            <Switch
              label={setting.label}
              description={setting.description}
              checked={cluster[setting.key]}
              disabled={update.isPending}
              onChange={(event) => update.mutate({ clusterId: cluster.id, [setting.key]: event.currentTarget.checked })}
            />
          </Can>
        ))}
        <ApiErrorAlert error={update.error} />
        {cluster.kind === "kubernetes" && <KubernetesBuildSetting cluster={cluster} />}
        <Can role="ADMIN">
          <Group gap="xs" mt="xs">
            <Button
              size="xs"
              variant="light"
              leftSection={cluster.tokenRevoked ? <IconPlugConnected size={14} /> : <IconRefresh size={14} />}
              loading={rotate.isPending}
              onClick={() => rotate.mutate({ clusterId: cluster.id })}
              // The visible text first, as axe's label-content-name-mismatch asks: the cluster's name tells the cards' buttons apart.
              aria-label={`${cluster.tokenRevoked ? "Connect an engine to" : "Rotate token of"} ${cluster.name}`}
            >
              {cluster.tokenRevoked ? "Connect an engine" : "Rotate token"}
            </Button>
            {!cluster.tokenRevoked && (
              <Button
                size="xs"
                variant="subtle"
                color="red"
                leftSection={<IconShieldOff size={14} />}
                onClick={revokeModal.open}
                aria-label={`Revoke token of ${cluster.name}`}
              >
                Revoke token
              </Button>
            )}
          </Group>
          <ApiErrorAlert error={rotate.error} />
        </Can>
      </Stack>
      <ConfirmModal
        opened={revoking}
        onClose={revokeModal.close}
        title="Revoke engine token"
        typeToConfirm={cluster.name}
        confirmLabel="Revoke token"
        onConfirm={() => revoke.mutateAsync({ clusterId: cluster.id })}
      >
        The engine of <strong>{cluster.name}</strong> is disconnected at once and cannot reconnect: deployments to its environments wait until a new engine
        connects with a new token. Apps already running keep serving.
      </ConfirmModal>
    </Card>
  );
}

const KINDS: { value: ClusterKind; label: string }[] = [
  { value: "local", label: "local: processes on the engine's host" },
  { value: "docker", label: "docker: containers through Docker or Podman" },
  { value: "kubernetes", label: "kubernetes: Deployments, Services and Ingresses in a Kubernetes cluster" },
];

const NEW_CLUSTER = "new";

/**
 * "Connect an engine": to an existing cluster (a new engine token, the old one stops working)
 * or to a new cluster registered here. Either way the engine command is shown once.
 */
function ConnectEngine({ clusters, onClose, onToken }: { clusters: Cluster[]; onClose: () => void; onToken: (shown: ShownToken) => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [target, setTarget] = useState<string>(clusters.find((cluster) => !cluster.connected)?.id ?? NEW_CLUSTER);
  const [name, setName] = useState("");
  const [kind, setKind] = useState<ClusterKind>("local");
  const [domainSuffix, setDomainSuffix] = useState("localhost");
  const [buildLocation, setBuildLocation] = useState<"cluster" | "engine-host">("cluster");
  const [buildDockerHost, setBuildDockerHost] = useState("");
  const done = async (result: { cluster: { name: string; kind: string }; engineToken: string }) => {
    onToken({ cluster: result.cluster.name, kind: result.cluster.kind, token: result.engineToken });
    await invalidate();
  };
  const create = useMutation(trpc.clusters.create.mutationOptions({ onSuccess: done }));
  const rotate = useMutation(trpc.clusters.rotateToken.mutationOptions({ onSuccess: done }));
  const failure = create.error ? apiError(create.error) : rotate.error ? apiError(rotate.error) : null;
  const nameError = name && !/^[a-z0-9][a-z0-9-]*$/.test(name) ? "Use lowercase letters, digits and hyphens" : null;
  const existing = clusters.find((cluster) => cluster.id === target);
  return (
    <Modal opened onClose={onClose} title="Connect an engine" centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (existing) rotate.mutate({ clusterId: existing.id });
          else if (!nameError && name && !(kind === "kubernetes" && dockerHostProblem(buildLocation, buildDockerHost)))
            create.mutate({
              name,
              kind,
              domainSuffix,
              ...(kind === "kubernetes" ? { kubernetesBuild: kubernetesBuildOf(buildLocation, buildDockerHost) } : {}),
            });
        }}
      >
        <Stack>
          <NativeSelect
            label="Cluster"
            value={target}
            onChange={(event) => setTarget(event.currentTarget.value)}
            data={[
              ...clusters.map((cluster) => ({ value: cluster.id, label: `${cluster.name} (${cluster.connected ? "connected" : "no engine"})` })),
              { value: NEW_CLUSTER, label: "A new cluster…" },
            ]}
          />
          {existing ? (
            <Alert color={existing.connected ? "yellow" : "blue"}>
              {existing.connected
                ? `A new token replaces the current one: the engine connected to ${existing.name} is disconnected until it uses the new command.`
                : `A new engine token for ${existing.name}; any previous token stops working.`}
            </Alert>
          ) : (
            <>
              <TextInput
                label="Cluster name"
                placeholder="eu-1"
                value={name}
                onChange={(event) => setName(event.currentTarget.value)}
                error={nameError ?? failure?.fields.name}
                maxLength={60}
                required
                data-autofocus
              />
              <NativeSelect label="Kind" value={kind} onChange={(event) => setKind(event.currentTarget.value as ClusterKind)} data={KINDS} />
              <TextInput
                label="Domain suffix"
                description="Services are served at <service>-<env>-<project>.<suffix>."
                value={domainSuffix}
                onChange={(event) => setDomainSuffix(event.currentTarget.value)}
                error={failure?.fields.domainSuffix}
                required
              />
              {kind === "kubernetes" && (
                <KubernetesBuildFields
                  location={buildLocation}
                  dockerHost={buildDockerHost}
                  onLocation={setBuildLocation}
                  onDockerHost={setBuildDockerHost}
                  error={dockerHostProblem(buildLocation, buildDockerHost) ?? failure?.fields["kubernetesBuild.dockerHost"]}
                />
              )}
            </>
          )}
          <DialogFormFooter
            error={failure && Object.keys(failure.fields).length === 0 && failure.message}
            onCancel={onClose}
            submit={existing ? "Create engine token" : "Register cluster"}
            pending={create.isPending || rotate.isPending}
          />
        </Stack>
      </form>
    </Modal>
  );
}

/** Deployment targets and the engines that serve them. */
export function ClustersPage() {
  const trpc = useTRPC();
  const clusters = useQuery(trpc.clusters.list.queryOptions({}, { refetchInterval: 10_000 }));
  const [registering, registerModal] = useDisclosure();
  const [shown, setShown] = useState<ShownToken | null>(null);
  return (
    <>
      <PageHeader
        title="Clusters"
        description="Where environments run. Each cluster is served by one engine, which connects to this control plane with the cluster's token."
        actions={
          <Can role="ADMIN">
            <Button leftSection={<IconPlus size={16} />} onClick={registerModal.open} disabled={!clusters.data}>
              Connect an engine
            </Button>
          </Can>
        }
      />
      <ApiErrorAlert error={clusters.error} />
      {clusters.data?.length === 0 && (
        <Card withBorder padding="lg">
          <Text c="dimmed" fz="sm">
            No cluster yet. Register one, then run the engine command it gives you on the target machine.
          </Text>
        </Card>
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        {clusters.data?.map((cluster) => (
          <ClusterCard key={cluster.id} cluster={cluster} onToken={setShown} />
        ))}
      </SimpleGrid>
      {registering && clusters.data && (
        <ConnectEngine
          clusters={clusters.data}
          onClose={registerModal.close}
          onToken={(token) => {
            registerModal.close();
            setShown(token);
          }}
        />
      )}
      <CommandModal shown={shown} onClose={() => setShown(null)} />
    </>
  );
}
