"use client";

import { Alert, Button, Group, NativeSelect, SimpleGrid, Stack, TextInput } from "@mantine/core";
import { useState, type ReactNode } from "react";
import type { Service } from "../api-types";
import type { ApplicationConfig } from "../../engine/protocol/snapshot";
import { fieldErrorsFor, type ApiErrorDetails } from "../errors";
import { branchError, commitError, dnsLabelError, gitUrlError, healthCheckPathError, portError, rootDirectoryError } from "../validation";

export type ServiceFormValues = {
  name: string;
  gitUrl: string;
  refKind: "branch" | "commit";
  ref: string;
  rootDirectory: string;
  buildCommand: string;
  startCommand: string;
  port: string;
  healthCheckPath: string;
};

type Field = keyof ServiceFormValues;

/** Commands are code: monospace in the box, the label stays in the UI font. */
const MONO = { input: { fontFamily: "var(--mantine-font-family-monospace)" } };

export const emptyServiceForm: ServiceFormValues = {
  name: "",
  gitUrl: "",
  refKind: "branch",
  ref: "main",
  rootDirectory: "",
  buildCommand: "",
  startCommand: "",
  port: "",
  healthCheckPath: "",
};

/** The form edits application services; a container service (no git source) has none of these fields. */
export function serviceFormFrom(service: Service): ServiceFormValues | null {
  if (service.kind !== "APPLICATION") return null;
  const config = service.config as ApplicationConfig;
  const ref = config.git.ref;
  return {
    name: service.name,
    gitUrl: config.git.url,
    refKind: "commit" in ref ? "commit" : "branch",
    ref: "commit" in ref ? ref.commit : ref.branch,
    rootDirectory: config.git.rootDirectory ?? "",
    buildCommand: config.buildCommand ?? "",
    startCommand: config.startCommand ?? "",
    port: config.port === undefined ? "" : String(config.port),
    healthCheckPath: config.healthCheckPath ?? "",
  };
}

/** The configuration the API takes, from the form; empty optional fields become `empty` (undefined on create, null on update to clear). */
export function serviceConfigFrom<E extends undefined | null>(values: ServiceFormValues, empty: E) {
  const optional = (value: string) => (value.trim() === "" ? empty : value.trim());
  return {
    git: {
      url: values.gitUrl.trim(),
      ref: values.refKind === "commit" ? { commit: values.ref.trim() } : { branch: values.ref.trim() },
      rootDirectory: values.rootDirectory.trim(),
    },
    buildCommand: optional(values.buildCommand),
    startCommand: optional(values.startCommand),
    port: values.port.trim() === "" ? empty : Number(values.port),
    healthCheckPath: optional(values.healthCheckPath),
  };
}

function validate(values: ServiceFormValues, withName: boolean): Partial<Record<Field, string>> {
  const errors: Partial<Record<Field, string | null>> = {
    name: withName ? dnsLabelError(values.name) : null,
    gitUrl: gitUrlError(values.gitUrl.trim()),
    ref: values.refKind === "commit" ? commitError(values.ref.trim()) : branchError(values.ref.trim()),
    rootDirectory: rootDirectoryError(values.rootDirectory.trim()),
    port: portError(values.port.trim()),
    healthCheckPath: healthCheckPathError(values.healthCheckPath.trim()),
  };
  return Object.fromEntries(Object.entries(errors).filter(([, message]) => message)) as Partial<Record<Field, string>>;
}

/** Server input paths, as in the zod error, to the form's fields. */
const SERVER_PATHS: [string, Field][] = [
  ["name", "name"],
  ["config.git.url", "gitUrl"],
  ["config.git.ref", "ref"],
  ["config.git.rootDirectory", "rootDirectory"],
  ["config.buildCommand", "buildCommand"],
  ["config.startCommand", "startCommand"],
  ["config.port", "port"],
  ["config.healthCheckPath", "healthCheckPath"],
];

/**
 * An APPLICATION service's settings: where the code is (git URL, branch or commit, root
 * directory) and how it is built and run. Empty build/start commands and port mean "detect".
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
}) {
  const [values, setValues] = useState(initial);
  const [submitted, setSubmitted] = useState(false);
  const [touched, setTouched] = useState<Partial<Record<Field, boolean>>>({});
  const local = validate(values, withName);
  const server = fieldErrorsFor(failure, SERVER_PATHS);
  const errorOf = (field: Field) => ((submitted || touched[field]) && local[field]) || server.fields[field];
  const input = (field: Field) => ({
    value: values[field],
    onChange: (event: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => {
      const value = event.currentTarget.value;
      setValues((current) => ({ ...current, [field]: value }));
    },
    onBlur: () => setTouched((current) => ({ ...current, [field]: true })),
    error: errorOf(field),
    readOnly,
  });

  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        setSubmitted(true);
        if (Object.keys(validate(values, withName)).length === 0) onSubmit(values);
      }}
      noValidate
    >
      <Stack gap="md">
        {withName && (
          <TextInput
            label="Service name"
            description="Lowercase letters, digits and inner hyphens, at most 40; part of the service's address."
            placeholder="web"
            maxLength={40}
            required
            data-autofocus
            {...input("name")}
          />
        )}
        <TextInput label="Git URL" description="http(s), ssh, git or file URL of the repository." placeholder="https://github.com/you/app.git" required {...input("gitUrl")} />
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          <NativeSelect
            label="Deploy from"
            data={[
              { value: "branch", label: "A branch" },
              { value: "commit", label: "A commit" },
            ]}
            {...input("refKind")}
            disabled={readOnly}
          />
          <TextInput
            label={values.refKind === "commit" ? "Commit" : "Branch"}
            placeholder={values.refKind === "commit" ? "a1b2c3d" : "main"}
            required
            {...input("ref")}
            style={{ gridColumn: "span 2" }}
          />
        </SimpleGrid>
        <TextInput label="Root directory" description="Folder of the app inside the repository; empty for the root." placeholder="apps/web" {...input("rootDirectory")} />
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput label="Build command" description="Empty: detected (npm ci && npm run build, pip install, …)." placeholder="npm run build" {...input("buildCommand")} styles={MONO} />
          <TextInput label="Start command" description="Empty: detected (npm start, Procfile web, …)." placeholder="node server.js" {...input("startCommand")} styles={MONO} />
        </SimpleGrid>
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput label="Port" description="Empty: the app listens on $PORT." placeholder="3000" inputMode="numeric" {...input("port")} />
          <TextInput label="Health-check path" description="Polled until it answers 2xx before traffic switches." placeholder="/healthz" {...input("healthCheckPath")} />
        </SimpleGrid>
        {failure && server.unmatched && (
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
