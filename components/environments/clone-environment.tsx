"use client";

import { Alert, Button, Checkbox, Group, Modal, NativeSelect, Stack, Text, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconCopy } from "@tabler/icons-react";
import { useMutation } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { dnsLabelError } from "../validation";

/** How long a copy lives before the reaper deletes it; none keeps it until someone does. */
const LIFETIMES = [
  { value: "", label: "Kept until deleted" },
  { value: String(8 * 3600), label: "8 hours" },
  { value: String(24 * 3600), label: "1 day" },
  { value: String(7 * 24 * 3600), label: "7 days" },
];

type Source = { id: string; name: string; services: { kind: string }[] };

/** A name for the copy that is still a DNS label: `<source>-copy` when it fits. */
function suggestedName(source: string): string {
  const name = `${source}-copy`;
  return name.length <= 40 ? name : "";
}

export function CloneEnvironmentButton({ environment }: { environment: Source }) {
  const [opened, { open, close }] = useDisclosure();
  return (
    <>
      <Button variant="default" leftSection={<IconCopy size={16} />} onClick={open}>
        Clone
      </Button>
      {opened && <CloneEnvironmentModal source={environment} onClose={close} />}
    </>
  );
}

/**
 * Copies the environment (services, their settings, variables and secrets) into a new one of
 * the same project, optionally with its databases' data, and deploys it right away by default.
 * Slipway generates what must not be shared (addresses, database ports and passwords) anew.
 */
function CloneEnvironmentModal({ source, onClose }: { source: Source; onClose: () => void }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const [name, setName] = useState(() => suggestedName(source.name));
  const [lifetime, setLifetime] = useState("");
  const [withData, setWithData] = useState(false);
  const [deploy, setDeploy] = useState(true);
  const [touched, setTouched] = useState(false);
  const databases = source.services.filter((service) => service.kind === "DATABASE").length;
  const clone = useMutation(
    trpc.environments.clone.mutationOptions({
      onSuccess: async ({ environment, deployment }) => {
        notifications.show({
          color: "green",
          message: deployment
            ? `Environment ${environment.name} cloned from ${source.name}; its first deployment is under way.`
            : `Environment ${environment.name} cloned from ${source.name}.`,
        });
        await invalidate();
        onClose();
        router.push(deployment ? `/deployments/${deployment.id}` : `/environments/${environment.id}`);
      },
    }),
  );
  const failure = clone.error ? apiError(clone.error) : null;
  const nameError = touched ? dnsLabelError(name.trim()) : null;
  const unmatched = failure && !failure.fields.name && !failure.fields.lifetimeSeconds;
  return (
    <Modal opened onClose={onClose} title={`Clone ${source.name}`} centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setTouched(true);
          if (dnsLabelError(name.trim())) return;
          clone.mutate({
            environmentId: source.id,
            name: name.trim(),
            lifetimeSeconds: lifetime ? Number(lifetime) : undefined,
            withData: databases > 0 && withData,
            deploy,
          });
        }}
        noValidate
      >
        <Stack>
          <Text fz="sm" c="dimmed">
            A new environment of this project with the same services, settings, variables and secrets. Addresses, database ports and passwords are generated
            anew: the copy shares nothing with {source.name}.
          </Text>
          <TextInput
            label="Environment name"
            description="Lowercase letters, digits and inner hyphens, at most 40."
            placeholder="feature-x"
            value={name}
            onChange={(event) => setName(event.currentTarget.value)}
            onBlur={() => setTouched(true)}
            error={nameError ?? failure?.fields.name}
            maxLength={40}
            required
            data-autofocus
          />
          <NativeSelect
            label="Lifetime"
            description="The copy is deleted once this has passed."
            value={lifetime}
            onChange={(event) => setLifetime(event.currentTarget.value)}
            data={LIFETIMES}
            error={failure?.fields.lifetimeSeconds}
          />
          <Checkbox
            label="Copy database data"
            description={
              databases > 0
                ? "Each database of the copy starts from a copy of this environment's data, taken at the copy's first deployment. The copy then runs on the same cluster."
                : "This environment has no database: the copy's services start without data."
            }
            checked={databases > 0 && withData}
            disabled={databases === 0}
            onChange={(event) => setWithData(event.currentTarget.checked)}
          />
          <Checkbox
            label="Deploy now"
            description={
              source.services.length > 0
                ? "Start the copy's first deployment right away; you will follow it on its page."
                : "Nothing to deploy: this environment has no service."
            }
            checked={deploy}
            onChange={(event) => setDeploy(event.currentTarget.checked)}
          />
          {unmatched && (
            <Alert color="red" role="alert" title="Not cloned">
              {failure.message}
            </Alert>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={clone.isPending}>
              Clone environment
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
