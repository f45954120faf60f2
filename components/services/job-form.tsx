"use client";

import { Alert, Button, Checkbox, Group, Radio, Select, SimpleGrid, Stack, Text, TextInput } from "@mantine/core";
import { useMemo, type ReactNode } from "react";
import type { JobLifecycleEvent } from "../../engine/protocol/snapshot";
import type { ApiErrorDetails } from "../errors";
import { useApiForm } from "../forms/use-api-form";
import { GitSourceFields, ServiceNameField } from "./git-source";
import { JOB_SERVER_PATHS, LIFECYCLE_EVENTS, MISSED_RUN_POLICIES, readSchedule, validateJob, type JobFormValues } from "./job-config";

/** The IANA time zones this browser knows, UTC first (Intl lists only the geographic ones). */
function timeZones(): string[] {
  return ["UTC", ...Intl.supportedValuesOf("timeZone").filter((zone) => zone !== "UTC")];
}

/** Commands are code: monospace in the box, the label stays in the UI font. */
const MONO = { input: { fontFamily: "var(--mantine-font-family-monospace)" } };

function NextRuns({ schedule, timeZone }: { schedule: string; timeZone: string }) {
  const read = readSchedule(schedule, timeZone);
  if ("error" in read) return null;
  const format = (date: Date) =>
    date.toLocaleString(undefined, { timeZone, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  return (
    <Text fz="xs" c="dimmed">
      Next runs: {read.next.map(format).join(" · ")} ({timeZone})
    </Text>
  );
}

/**
 * A JOB service's settings: the code (git, like an application), how it is built, the command
 * that runs to completion, when it runs (a cron schedule in a time zone, or with the
 * environment's lifecycle), its time limit and retries.
 */
export function JobForm({
  initial,
  withName,
  submitLabel,
  pending,
  failure,
  onSubmit,
  onCancel,
  readOnly = false,
  children,
}: {
  initial: JobFormValues;
  withName: boolean;
  submitLabel: string;
  pending: boolean;
  failure: ApiErrorDetails | null;
  onSubmit: (values: JobFormValues) => void;
  onCancel?: () => void;
  readOnly?: boolean;
  /** More settings saved by the same Save (the service page's deploy-on-push fields). */
  children?: ReactNode;
}) {
  const { form, input, unmatchedServerError } = useApiForm({
    initialValues: initial,
    validate: (values) => validateJob(values, withName),
    paths: JOB_SERVER_PATHS,
    failure,
    readOnly,
  });
  const values = form.getValues();
  const set = <F extends keyof JobFormValues & string>(field: F, value: JobFormValues[F]) => form.setFieldValue(field, value as never);
  const errorOf = (field: keyof JobFormValues) => form.errors[field];
  const zones = useMemo(() => {
    const known = timeZones();
    return known.includes(initial.timeZone) ? known : [initial.timeZone, ...known];
  }, [initial.timeZone]);

  return (
    <form onSubmit={form.onSubmit(onSubmit)} noValidate>
      <Stack gap="md">
        {withName && <ServiceNameField placeholder="nightly-report" {...input("name")} />}
        <GitSourceFields
          input={input}
          refKind={values.refKind}
          readOnly={readOnly}
          refLabel="Build from"
          rootDescription="Folder of the job inside the repository; empty for the root."
          rootPlaceholder="jobs/report"
        />
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput label="Build command" description="Empty: detected, as for applications." placeholder="npm ci" {...input("buildCommand")} styles={MONO} />
          <TextInput
            label="Command"
            description="Runs to completion; exit code 0 is a success."
            placeholder="node report.js"
            required
            {...input("command")}
            styles={MONO}
          />
        </SimpleGrid>
        <Radio.Group label="Trigger" value={values.triggerType} onChange={(value) => !readOnly && set("triggerType", value as JobFormValues["triggerType"])}>
          <Group mt={6}>
            <Radio value="cron" label="On a cron schedule" disabled={readOnly && values.triggerType !== "cron"} />
            <Radio value="lifecycle" label="When the environment changes" disabled={readOnly && values.triggerType !== "lifecycle"} />
          </Group>
        </Radio.Group>
        {values.triggerType === "cron" ? (
          <Stack gap={4}>
            <SimpleGrid cols={{ base: 1, sm: 2 }}>
              <TextInput
                label="Schedule"
                description="minute hour day-of-month month day-of-week (a sixth field first for seconds)."
                placeholder="0 3 * * *"
                required
                {...input("schedule")}
                styles={MONO}
              />
              <Select
                label="Time zone"
                description="The schedule is read in this zone."
                data={zones}
                searchable
                allowDeselect={false}
                value={values.timeZone}
                onChange={(value) => value && set("timeZone", value)}
                error={errorOf("timeZone")}
                readOnly={readOnly}
                nothingFoundMessage="No such time zone"
              />
            </SimpleGrid>
            <NextRuns schedule={values.schedule} timeZone={values.timeZone} />
            <Radio.Group
              label="Runs missed while the engine was down"
              value={values.missedRuns}
              onChange={(value) => !readOnly && set("missedRuns", value as JobFormValues["missedRuns"])}
              error={errorOf("missedRuns")}
              mt={6}
            >
              <Stack gap={6} mt={6}>
                {MISSED_RUN_POLICIES.map((policy) => (
                  <Radio
                    key={policy.value}
                    value={policy.value}
                    label={policy.label}
                    description={policy.description}
                    disabled={readOnly && values.missedRuns !== policy.value}
                  />
                ))}
              </Stack>
            </Radio.Group>
            <Text fz="xs" c="dimmed">
              Each run&apos;s output goes to the service&apos;s runtime logs. The engine keeps time, so runs happen while the control plane is down.
            </Text>
          </Stack>
        ) : (
          <Checkbox.Group
            label="Runs when the environment"
            description="A run is a step of the deployment: a failed run fails it. The job may write a JSON object of strings to $SLIPWAY_OUTPUT_FILE; those become variables of the services deployed after it."
            value={values.on}
            onChange={(value) => !readOnly && set("on", value as JobLifecycleEvent[])}
            error={errorOf("on")}
          >
            <Stack gap={6} mt={8}>
              {LIFECYCLE_EVENTS.map((event) => (
                <Checkbox key={event.value} value={event.value} label={event.label} description={event.description} disabled={readOnly} />
              ))}
            </Stack>
          </Checkbox.Group>
        )}
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput
            label="Timeout (seconds)"
            description="A run still going after this is stopped and counts as timed out."
            placeholder="600"
            inputMode="numeric"
            required
            {...input("timeoutSeconds")}
          />
          <TextInput
            label="Retries"
            description="A failed or timed-out run is tried again up to this many times (0 to 10)."
            placeholder="0"
            inputMode="numeric"
            required
            {...input("retries")}
          />
        </SimpleGrid>
        {children}
        {failure && unmatchedServerError && (
          <Alert color="red" role="alert" title="The server refused the change">
            {failure.message}
          </Alert>
        )}
        {!readOnly && (
          <Group justify="flex-end">
            {onCancel && (
              <Button variant="default" onClick={onCancel}>
                Cancel
              </Button>
            )}
            <Button type="submit" loading={pending}>
              {submitLabel}
            </Button>
          </Group>
        )}
      </Stack>
    </form>
  );
}
