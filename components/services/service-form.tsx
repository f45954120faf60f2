"use client";

import { Alert, Button, Group, SimpleGrid, Stack, TextInput } from "@mantine/core";
import type { ReactNode } from "react";
import type { Service } from "../api-types";
import { z } from "zod";
import { applicationConfig, dnsLabel, type ApplicationConfig } from "../../engine/protocol/snapshot";
import type { ApiErrorDetails } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import {
  emptyGitSource,
  GIT_SOURCE_SERVER_PATHS,
  gitSourceConfig,
  GitSourceFields,
  gitSourceValues,
  ServiceNameField,
  type GitSourceValues,
} from "./git-source";

export type ServiceFormValues = GitSourceValues & {
  name: string;
  installCommand: string;
  buildCommand: string;
  startCommand: string;
  nodeVersion: string;
  pythonVersion: string;
  outputDirectory: string;
  port: string;
  healthCheckPath: string;
  /** Minutes without a request before it sleeps; "never"; empty: the environment's default. */
  sleepAfter: string;
};

type Field = keyof ServiceFormValues;

/** Commands are code: monospace in the box, the label stays in the UI font. */
const MONO = { input: { fontFamily: "var(--mantine-font-family-monospace)" } };

export const emptyServiceForm: ServiceFormValues = {
  name: "",
  ...emptyGitSource,
  installCommand: "",
  buildCommand: "",
  startCommand: "",
  nodeVersion: "",
  pythonVersion: "",
  outputDirectory: "",
  port: "",
  healthCheckPath: "",
  sleepAfter: "",
};

/** The form edits application services; a container service (no git source) has none of these fields. */
export function serviceFormFrom(service: Service): ServiceFormValues | null {
  if (service.kind !== "APPLICATION") return null;
  const config = service.config as ApplicationConfig;
  return {
    name: service.name,
    ...gitSourceValues(config.git),
    installCommand: config.installCommand ?? "",
    buildCommand: config.buildCommand ?? "",
    startCommand: config.startCommand ?? "",
    nodeVersion: config.nodeVersion ?? "",
    pythonVersion: config.pythonVersion ?? "",
    outputDirectory: config.outputDirectory ?? "",
    port: config.port === undefined ? "" : String(config.port),
    healthCheckPath: config.healthCheckPath ?? "",
    sleepAfter: config.sleepAfterMinutes === undefined ? "" : config.sleepAfterMinutes === 0 ? "never" : String(config.sleepAfterMinutes),
  };
}

/** The configuration the API takes, from the form; empty optional fields become `empty` (undefined on create, null on update to clear). */
export function serviceConfigFrom<E extends undefined | null>(values: ServiceFormValues, empty: E) {
  const optional = (value: string) => (value.trim() === "" ? empty : value.trim());
  return {
    git: gitSourceConfig(values),
    installCommand: optional(values.installCommand),
    buildCommand: optional(values.buildCommand),
    startCommand: optional(values.startCommand),
    nodeVersion: optional(values.nodeVersion),
    pythonVersion: optional(values.pythonVersion),
    outputDirectory: optional(values.outputDirectory),
    port: values.port.trim() === "" ? empty : Number(values.port),
    healthCheckPath: optional(values.healthCheckPath),
    sleepAfterMinutes: sleepAfterMinutesOf(values.sleepAfter, empty),
  };
}

/** "never" is 0 (never sleeps, whatever the environment's default); empty follows the environment's default. */
function sleepAfterMinutesOf<E extends undefined | null>(text: string, empty: E): number | E {
  const value = text.trim().toLowerCase();
  if (value === "") return empty;
  return value === "never" ? 0 : Number(value);
}

/** What the API takes (`services.create`), by the protocol's schema: the name only where the form has it. */
const withNameSchema = z.object({ name: dnsLabel, config: applicationConfig });
const withoutNameSchema = z.object({ config: applicationConfig });
/** Input paths, as in the schema's and the server's issues, to the form's fields. */
const SERVER_PATHS: [string, Field][] = [
  ["name", "name"],
  ...GIT_SOURCE_SERVER_PATHS,
  ["config.installCommand", "installCommand"],
  ["config.buildCommand", "buildCommand"],
  ["config.startCommand", "startCommand"],
  ["config.nodeVersion", "nodeVersion"],
  ["config.pythonVersion", "pythonVersion"],
  ["config.outputDirectory", "outputDirectory"],
  ["config.port", "port"],
  ["config.healthCheckPath", "healthCheckPath"],
  ["config.sleepAfterMinutes", "sleepAfter"],
];

/**
 * An APPLICATION service's settings: where the code is (git URL, branch or commit, root
 * directory) and how it is built and run. Empty commands, versions and port mean "detect".
 */
export function ServiceForm({
  initial,
  withName,
  submitLabel,
  pending,
  failure,
  onSubmit,
  onCancel,
  readOnly = false,
  extraActions,
  children,
}: {
  initial: ServiceFormValues;
  withName: boolean;
  submitLabel: string;
  pending: boolean;
  failure: ApiErrorDetails | null;
  onSubmit: (values: ServiceFormValues) => void;
  onCancel?: () => void;
  readOnly?: boolean;
  extraActions?: ReactNode;
  /** More settings saved by the same Save (the service page's deploy-on-push fields). */
  children?: ReactNode;
}) {
  const { form, input, unmatchedServerError } = useApiForm({
    initialValues: initial,
    validate: apiSchemaResolver(
      withName ? withNameSchema : withoutNameSchema,
      (values: ServiceFormValues) => ({ name: values.name.trim(), config: serviceConfigFrom(values, undefined) }),
      SERVER_PATHS,
    ),
    paths: SERVER_PATHS,
    failure,
    readOnly,
  });
  const values = form.getValues();

  return (
    <form onSubmit={form.onSubmit(onSubmit)} noValidate>
      <Stack gap="md">
        {withName && (
          <ServiceNameField
            placeholder="web"
            description="Lowercase letters, digits and inner hyphens, at most 40; part of the service's address."
            {...input("name")}
          />
        )}
        <GitSourceFields
          input={input}
          refKind={values.refKind}
          readOnly={readOnly}
          refLabel="Deploy from"
          rootDescription="Folder of the app inside the repository; empty for the root."
          rootPlaceholder="apps/web"
        />
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput
            label="Install command"
            description="Empty: detected from the lockfile (npm ci, yarn install, pip install, …)."
            placeholder="npm ci"
            {...input("installCommand")}
            styles={MONO}
          />
          <TextInput
            label="Build command"
            description="Empty: detected (npm ci && npm run build, pip install, …)."
            placeholder="npm run build"
            {...input("buildCommand")}
            styles={MONO}
          />
          <TextInput
            label="Start command"
            description="Empty: detected (npm start, Procfile web, …)."
            placeholder="node server.js"
            {...input("startCommand")}
            styles={MONO}
          />
          <TextInput
            label="Output directory"
            description="A static site's built files, served by the engine. Empty: detected (dist, build, out, …)."
            placeholder="dist"
            {...input("outputDirectory")}
            styles={MONO}
          />
        </SimpleGrid>
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput
            label="Node version"
            description="A version or semver range. Empty: engines.node, .nvmrc or .node-version, else the current LTS."
            placeholder="22"
            {...input("nodeVersion")}
          />
          <TextInput
            label="Python version"
            description="Such as 3.12. Empty: .python-version or runtime.txt, else the engine's."
            placeholder="3.12"
            {...input("pythonVersion")}
          />
        </SimpleGrid>
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput label="Port" description="Empty: the app listens on $PORT." placeholder="3000" inputMode="numeric" {...input("port")} />
          <TextInput
            label="Health-check path"
            description="Polled until it answers 2xx before traffic switches."
            placeholder="/healthz"
            {...input("healthCheckPath")}
          />
          <TextInput
            label="Sleep after (minutes)"
            description="Stopped after this long without a request, started again by the next one. never: always on. Empty: the environment's default."
            placeholder="never"
            {...input("sleepAfter")}
          />
        </SimpleGrid>
        {children}
        {failure && unmatchedServerError && (
          <Alert color="red" role="alert" title="The server refused the change">
            {failure.message}
          </Alert>
        )}
        {!readOnly && (
          <Group justify="space-between">
            <Group>{extraActions}</Group>
            <Group>
              {onCancel && (
                <Button variant="default" onClick={onCancel}>
                  Cancel
                </Button>
              )}
              <Button type="submit" loading={pending}>
                {submitLabel}
              </Button>
            </Group>
          </Group>
        )}
      </Stack>
    </form>
  );
}
