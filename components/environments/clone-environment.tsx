"use client";

import { Button, Checkbox, Group, Modal, NativeSelect, Stack, Text, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconCopy } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import type { z } from "zod";
import { cloneEnvironmentInput, defaultCloneCommits, type CloneCommits } from "../../server/environments/clone-environment.types";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { DialogFormFooter } from "../forms/dialog-form-footer";

/** How long a copy lives before the reaper deletes it; none keeps it until someone does. */
const LIFETIMES = [
  { value: "", label: "Kept until deleted" },
  { value: String(8 * 3600), label: "8 hours" },
  { value: String(24 * 3600), label: "1 day" },
  { value: String(7 * 24 * 3600), label: "7 days" },
];

type Source = { id: string; name: string; cluster: { id: string }; services: { name: string; kind: string }[] };

type Values = {
  name: string;
  clusterId: string;
  services: string[];
  branch: string;
  lifetime: string;
  withData: boolean;
  deploy: boolean;
  commits: CloneCommits;
};
type Field = keyof Values;

const PATHS: readonly (readonly [string, Field])[] = [
  ["name", "name"],
  ["clusterId", "clusterId"],
  ["services", "services"],
  ["branch", "branch"],
  ["lifetimeSeconds", "lifetime"],
  ["withData", "withData"],
  ["commits", "commits"],
];

/** Data is copied on the source's engine: only a copy with a database, on the source's cluster, can take it (the server says so too). */
function copiesData(source: Source, values: Values): boolean {
  return values.clusterId === source.cluster.id && source.services.some((service) => service.kind === "DATABASE" && values.services.includes(service.name));
}

/** What the API takes, from the form: what the form checks before sending is what it sends. */
function cloneInput(source: Source, values: Values): z.input<typeof cloneEnvironmentInput> {
  return {
    environmentId: source.id,
    name: values.name.trim(),
    clusterId: values.clusterId,
    // All of them is the API's default: a copy made later of a grown source takes what it has then.
    services: values.services.length === source.services.length && source.services.length > 0 ? undefined : values.services,
    branch: values.branch.trim() || undefined,
    lifetimeSeconds: values.lifetime ? Number(values.lifetime) : undefined,
    withData: copiesData(source, values) && values.withData,
    deploy: values.deploy,
    commits: values.deploy ? deployedCommits(values) : undefined,
  };
}

/** A copy that follows another branch deploys that branch: its source's commits are not on it. */
function deployedCommits(values: Values): CloneCommits {
  return values.branch.trim() ? defaultCloneCommits(values.branch.trim()) : values.commits;
}

type LiveCommit = { service: string; commit: string; subject: string | null };

/** Says which commit each copied service built from git deploys, so nobody expects the running one and gets the branch's latest. */
function commitsDescription(sourceName: string, fromGit: string[], commits: CloneCommits, live: LiveCommit[] | undefined): string {
  if (commits === "latest") return "Each service builds its branch's latest commit, which may not be what runs in " + sourceName + ".";
  if (!live) return `Each service builds the commit it runs in ${sourceName} now.`;
  const at = fromGit.map((name) => {
    const found = live.find((commit) => commit.service === name);
    return found ? `${name} at ${found.commit.slice(0, 7)}` : `${name} at its branch's latest (never live in ${sourceName})`;
  });
  return `Each service builds the commit it runs in ${sourceName} now: ${at.join(", ")}.`;
}

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
 * Copies the environment (the services chosen, their settings, variables and secrets) into a new
 * one of the same project, on the cluster chosen, optionally following another branch and with
 * its databases' data, and deploys it right away by default. Slipway generates what must not be
 * shared (addresses, database ports and passwords) anew.
 */
function CloneEnvironmentModal({ source, onClose }: { source: Source; onClose: () => void }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const clusters = useQuery(trpc.clusters.list.queryOptions({}));
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
  const { form, input, unmatchedServerError } = useApiForm<Values, Field>({
    initialValues: {
      name: suggestedName(source.name),
      clusterId: source.cluster.id,
      services: source.services.map((service) => service.name),
      branch: "",
      lifetime: "",
      withData: false,
      deploy: true,
      // What runs in the source, as a copy of it: a rollback or a failed push since is not what it would copy otherwise.
      commits: defaultCloneCommits(undefined),
    },
    validate: apiSchemaResolver(cloneEnvironmentInput, (values: Values) => cloneInput(source, values), PATHS),
    paths: PATHS,
    failure,
  });
  const values = form.getValues();
  const chosen = source.services.filter((service) => values.services.includes(service.name));
  const databases = chosen.filter((service) => service.kind === "DATABASE").length;
  const fromGit = chosen.filter((service) => service.kind === "APPLICATION" || service.kind === "JOB").map((service) => service.name);
  const followsBranch = values.branch.trim() !== "";
  const live = useQuery({ ...trpc.environments.liveCommits.queryOptions({ environmentId: source.id }), enabled: values.deploy && fromGit.length > 0 });
  // Data is copied on the source's engine: another cluster cannot take it (the server says so too).
  const canCopyData = copiesData(source, values);
  return (
    <Modal opened onClose={onClose} title={`Clone ${source.name}`} centered size="lg">
      <form onSubmit={form.onSubmit((submitted) => clone.mutate(cloneInput(source, submitted)))} noValidate>
        <Stack>
          <Text fz="sm" c="dimmed">
            A new environment of this project with the services chosen, their settings, variables and secrets. Addresses, database ports and passwords are
            generated anew: the copy shares nothing with {source.name}.
          </Text>
          <TextInput
            label="Environment name"
            description="Lowercase letters, digits and inner hyphens, at most 40."
            placeholder="feature-x"
            {...input("name")}
            maxLength={40}
            required
            data-autofocus
          />
          <NativeSelect
            label="Cluster"
            description="Where the copy's services run."
            {...input("clusterId")}
            data={(clusters.data ?? [{ id: source.cluster.id, name: "this environment's cluster", kind: "", connected: true }]).map((cluster) => ({
              value: cluster.id,
              label: `${cluster.name}${cluster.kind ? ` (${cluster.kind})` : ""}${cluster.id === source.cluster.id ? " · same as the source" : ""}${cluster.connected ? "" : " · disconnected"}`,
            }))}
          />
          {source.services.length > 0 && (
            <Checkbox.Group
              label="Services to copy"
              description="With their service variables; environment variables are always copied."
              {...input("services")}
            >
              <Group mt={6} gap="md">
                {source.services.map((service) => (
                  <Checkbox key={service.name} value={service.name} label={service.name} />
                ))}
              </Group>
            </Checkbox.Group>
          )}
          <TextInput
            label="Branch"
            description={
              fromGit.length > 0
                ? "Every copied service built from git follows this branch; empty keeps each one's own."
                : "No copied service is built from git."
            }
            placeholder="feature/login"
            {...input("branch")}
            disabled={fromGit.length === 0}
            styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
          />
          <NativeSelect label="Lifetime" description="The copy is deleted once this has passed." {...input("lifetime")} data={LIFETIMES} />
          <Checkbox
            label="Copy database data"
            description={
              databases === 0
                ? "No database is copied: the copy's services start without data."
                : canCopyData
                  ? "Each database of the copy starts from a copy of this environment's data, taken at the copy's first deployment."
                  : "Data can be copied only on the source's cluster."
            }
            {...input("withData", { type: "checkbox" })}
            checked={canCopyData && values.withData}
            disabled={!canCopyData}
          />
          <Checkbox
            label="Deploy now"
            description={
              chosen.length > 0 ? "Start the copy's first deployment right away; you will follow it on its page." : "Nothing to deploy: no service is copied."
            }
            {...input("deploy", { type: "checkbox" })}
          />
          {values.deploy && fromGit.length > 0 && (
            <NativeSelect
              label="Commits to deploy"
              description={commitsDescription(source.name, fromGit, deployedCommits(values), live.data)}
              {...input("commits")}
              value={deployedCommits(values)}
              disabled={followsBranch}
              data={[
                { value: "live", label: `What ${source.name} runs now`, disabled: followsBranch },
                { value: "latest", label: "Each branch's latest commit" },
              ]}
            />
          )}
          <DialogFormFooter
            error={failure && unmatchedServerError && failure.message}
            errorTitle="Not cloned"
            onCancel={onClose}
            submit="Clone environment"
            pending={clone.isPending}
          />
        </Stack>
      </form>
    </Modal>
  );
}
