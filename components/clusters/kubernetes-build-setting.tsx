"use client";

import { Alert, Button, Group, NativeSelect, Stack, Text, TextInput } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { dockerHostUrl } from "../../engine/protocol/image-build";
import type { Inputs, Outputs } from "../api-types";
import { Can } from "../auth/can";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";

type Cluster = Outputs["clusters"]["list"][number];
type KubernetesBuild = NonNullable<Inputs["clusters"]["create"]["kubernetesBuild"]>;
type Location = KubernetesBuild["location"];

const LOCATIONS: { value: Location; label: string }[] = [
  { value: "cluster", label: "In the cluster: a build Job (Kaniko or BuildKit)" },
  { value: "engine-host", label: "On the engine's host, through its Docker API" },
];

/** What is wrong with the Docker API field, by the API's own rule, before it is sent; null when nothing is (or it is empty). */
export function dockerHostProblem(location: Location, dockerHost: string): string | null {
  if (location !== "engine-host" || dockerHost.trim() === "") return null;
  const parsed = dockerHostUrl.safeParse(dockerHost.trim());
  return parsed.success ? null : (parsed.error.issues[0]?.message ?? "not a Docker API URL");
}

/** The setting as the API takes it, from the two fields. */
export function kubernetesBuildOf(location: Location, dockerHost: string): KubernetesBuild {
  return location === "cluster" ? { location } : { location, dockerHost: dockerHost.trim() };
}

function describeKubernetesBuild(build: KubernetesBuild): string {
  return build.location === "cluster" ? "in the cluster (a build Job)" : `on the engine's host, through the Docker API at ${build.dockerHost}`;
}

/** Where a kubernetes cluster builds images of git services: the two fields, in the create dialog and on the cluster's card. */
export function KubernetesBuildFields(props: {
  location: Location;
  dockerHost: string;
  onLocation: (location: Location) => void;
  onDockerHost: (dockerHost: string) => void;
  error?: string;
  disabled?: boolean;
}) {
  return (
    <Stack gap="xs">
      <NativeSelect
        label="Image builds"
        description="Where images of services from git are built; either way they are pushed to the cluster's registry and deployed by digest"
        value={props.location}
        onChange={(event) => props.onLocation(event.currentTarget.value as Location)}
        data={LOCATIONS}
        disabled={props.disabled}
      />
      {props.location === "engine-host" && (
        <TextInput
          label="Docker API"
          description="Docker or Podman on the engine's host: unix:///var/run/docker.sock or tcp://host:port"
          placeholder="unix:///var/run/docker.sock"
          value={props.dockerHost}
          onChange={(event) => props.onDockerHost(event.currentTarget.value)}
          error={props.error}
          disabled={props.disabled}
          required
        />
      )}
    </Stack>
  );
}

/** A kubernetes cluster's image builds, on its card: an ADMIN changes them (audited), everyone else reads them. */
export function KubernetesBuildSetting({ cluster }: { cluster: Cluster }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const current: KubernetesBuild = cluster.kubernetesBuild ?? { location: "cluster" };
  const [location, setLocation] = useState<Location>(current.location);
  const [dockerHost, setDockerHost] = useState(current.location === "engine-host" ? current.dockerHost : "");
  const update = useMutation(trpc.clusters.update.mutationOptions({ onSuccess: invalidate }));
  const failure = update.error ? apiError(update.error) : null;
  const wanted = kubernetesBuildOf(location, dockerHost);
  const changed = JSON.stringify(wanted) !== JSON.stringify(current);
  const problem = dockerHostProblem(location, dockerHost);
  return (
    <Can
      role="ADMIN"
      fallback={
        <Text fz="sm">
          Image builds: {describeKubernetesBuild(current)}
          <Text span fz="xs" c="dimmed" display="block">
            Images of services from git are pushed to the cluster&apos;s registry and deployed by digest
          </Text>
        </Text>
      }
    >
      <form
        aria-label={`Image builds of ${cluster.name}`}
        onSubmit={(event) => {
          event.preventDefault();
          update.mutate({ clusterId: cluster.id, kubernetesBuild: wanted });
        }}
      >
        <Stack gap="xs">
          <KubernetesBuildFields
            location={location}
            dockerHost={dockerHost}
            onLocation={setLocation}
            onDockerHost={setDockerHost}
            error={problem ?? failure?.fields["kubernetesBuild.dockerHost"]}
            disabled={update.isPending}
          />
          <Group justify="flex-end">
            <Button
              type="submit"
              size="xs"
              variant="light"
              disabled={!changed || problem !== null || (wanted.location === "engine-host" && !wanted.dockerHost)}
              loading={update.isPending}
            >
              Save image builds
            </Button>
          </Group>
          {failure && !failure.fields["kubernetesBuild.dockerHost"] && (
            <Alert color="red" role="alert">
              {failure.message}
            </Alert>
          )}
        </Stack>
      </form>
    </Can>
  );
}
