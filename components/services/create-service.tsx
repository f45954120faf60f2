"use client";

import { Alert, Button, Group, Modal, NativeSelect, SegmentedControl, Stack, Text, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconPlus } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { z } from "zod";
import { databaseEngine, dnsLabel, type DatabaseEngine, type ServiceKind } from "../../engine/protocol/snapshot";
import { apiError, type ApiErrorDetails } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { findEnvironment, useOverview } from "../overview/use-overview";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { emptyJobForm, jobConfigFrom } from "./job-config";
import { JobForm } from "./job-form";
import { emptyServiceForm, ServiceForm, serviceConfigFrom } from "./service-form";

/** The kinds the dashboard creates; CONTAINER services are created through the API or the CLI. */
type CreatableKind = Exclude<ServiceKind, "CONTAINER">;

const KINDS: { value: CreatableKind; label: string; description: string }[] = [
  {
    value: "APPLICATION",
    label: "Application",
    description: "Code from a git repository, built and run as a web service; Slipway detects how (Node, Python, static site, Procfile).",
  },
  {
    value: "DATABASE",
    label: "Database",
    description:
      "A database Slipway runs for this environment. It generates the connection and gives every service of the environment its SLIPWAY_<NAME>_* variables.",
  },
  {
    value: "JOB",
    label: "Job",
    description: "Code from git that runs to completion: on a cron schedule, or when the environment starts, stops or is deleted.",
  },
];

export const DATABASE_ENGINES: { value: DatabaseEngine; label: string }[] = [
  { value: "postgresql", label: "PostgreSQL" },
  { value: "redis", label: "Redis" },
];

export function CreateServiceButton({ environmentId, variant = "filled" }: { environmentId: string; variant?: "filled" | "light" }) {
  const [opened, { open, close }] = useDisclosure();
  return (
    <>
      <Button leftSection={<IconPlus size={16} />} onClick={open} variant={variant}>
        New service
      </Button>
      {opened && <CreateServiceModal environmentId={environmentId} onClose={close} />}
    </>
  );
}

/** What the environment's cluster says its engine runs (`capabilities`); undefined until known or when it never said. */
function useClusterRuns(environmentId: string): { cluster: string; kinds?: string[]; databases?: string[] } | undefined {
  const trpc = useTRPC();
  const overview = useOverview();
  const clusters = useQuery(trpc.clusters.list.queryOptions({}));
  const clusterId = findEnvironment(overview.data, environmentId)?.environment.cluster.id;
  const cluster = clusters.data?.find((candidate) => candidate.id === clusterId);
  if (!cluster) return undefined;
  const strings = (value: unknown) => (Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : undefined);
  return { cluster: cluster.name, kinds: strings(cluster.capabilities.serviceKinds), databases: strings(cluster.capabilities.databases) };
}

function CreateServiceModal({ environmentId, onClose }: { environmentId: string; onClose: () => void }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const [kind, setKind] = useState<CreatableKind>("APPLICATION");
  const runs = useClusterRuns(environmentId);
  const create = useMutation(
    trpc.services.create.mutationOptions({
      onSuccess: async (service) => {
        notifications.show({ color: "green", message: `Service ${service.name} created: its Deploy button, at the top of its page, builds and starts it.` });
        await invalidate();
        onClose();
        router.push(`/services/${service.id}`);
      },
    }),
  );
  const failure = create.error ? apiError(create.error) : null;
  const unsupported = runs?.kinds && !runs.kinds.includes(kind);
  return (
    <Modal opened onClose={onClose} title="New service" size="lg" centered>
      <Stack gap="md">
        <Stack gap={6}>
          <SegmentedControl
            aria-label="Kind of service"
            value={kind}
            onChange={(value) => {
              setKind(value as CreatableKind);
              create.reset();
            }}
            data={KINDS.map(({ value, label }) => ({ value, label }))}
            fullWidth
          />
          <Text fz="sm" c="dimmed">
            {KINDS.find((candidate) => candidate.value === kind)!.description}
          </Text>
        </Stack>
        {unsupported && (
          <Alert color="yellow" title="Not on this cluster">
            The engine of cluster {runs.cluster} runs {runs.kinds!.map((value) => value.toLowerCase()).join(", ")} services: it would refuse this one.
          </Alert>
        )}
        {kind === "APPLICATION" && (
          <ServiceForm
            initial={emptyServiceForm}
            withName
            submitLabel="Create service"
            pending={create.isPending}
            failure={failure}
            onCancel={onClose}
            onSubmit={(values) => create.mutate({ environmentId, name: values.name.trim(), kind: "APPLICATION", config: serviceConfigFrom(values, undefined) })}
          />
        )}
        {kind === "DATABASE" && (
          <DatabaseForm
            availableEngines={runs?.databases}
            pending={create.isPending}
            failure={failure}
            onCancel={onClose}
            onSubmit={(values) => create.mutate({ environmentId, name: values.name, kind: "DATABASE", config: { engine: values.engine } })}
          />
        )}
        {kind === "JOB" && (
          <JobForm
            initial={emptyJobForm()}
            withName
            submitLabel="Create job"
            pending={create.isPending}
            failure={failure}
            onCancel={onClose}
            onSubmit={(values) => create.mutate({ environmentId, name: values.name.trim(), kind: "JOB", config: jobConfigFrom(values, undefined) })}
          />
        )}
      </Stack>
    </Modal>
  );
}

/** `services.create`'s input for a DATABASE, by the protocol's rules. */
const databaseSchema = z.object({ name: dnsLabel, config: z.object({ engine: databaseEngine }) });
type DatabaseValues = { name: string; engine: DatabaseEngine };
const DATABASE_PATHS = [
  ["name", "name"],
  ["config", "engine"],
] as const;

/** A database is its name and engine: Slipway generates the rest (port, user, password, database). */
function DatabaseForm({
  availableEngines,
  pending,
  failure,
  onSubmit,
  onCancel,
}: {
  /** The engines the cluster runs, when its engine said. */
  availableEngines: string[] | undefined;
  pending: boolean;
  failure: ApiErrorDetails | null;
  onSubmit: (values: { name: string; engine: DatabaseEngine }) => void;
  onCancel: () => void;
}) {
  const { form, input, unmatchedServerError } = useApiForm({
    initialValues: { name: "", engine: "postgresql" as DatabaseEngine },
    validate: apiSchemaResolver(databaseSchema, (values: DatabaseValues) => ({ name: values.name.trim(), config: { engine: values.engine } }), DATABASE_PATHS),
    paths: DATABASE_PATHS,
    failure,
  });
  const name = form.getValues().name;
  const missing = (value: string) => availableEngines !== undefined && !availableEngines.includes(value);
  const prefix = `SLIPWAY_${(name.trim() || "<name>").toUpperCase().replace(/-/g, "_")}`;
  return (
    <form onSubmit={form.onSubmit((values) => onSubmit({ name: values.name.trim(), engine: values.engine }))} noValidate>
      <Stack gap="md">
        <TextInput
          label="Service name"
          description="Lowercase letters, digits and inner hyphens, at most 40; it names the variables applications receive."
          placeholder="db"
          maxLength={40}
          required
          data-autofocus
          {...input("name")}
        />
        <NativeSelect
          label="Engine"
          {...input("engine")}
          data={DATABASE_ENGINES.map(({ value, label }) => ({
            value,
            label: missing(value) ? `${label} (not on this cluster)` : label,
            disabled: missing(value),
          }))}
        />
        <Text fz="sm" c="dimmed">
          Services of this environment will receive {prefix}_URL, _HOST, _PORT, _USER, _PASSWORD and _DATABASE. The database cannot be changed once created.
        </Text>
        {failure && unmatchedServerError && (
          <Alert color="red" role="alert" title="The server refused it">
            {failure.message}
          </Alert>
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={onCancel}>
            Cancel
          </Button>
          <Button type="submit" loading={pending}>
            Create database
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
