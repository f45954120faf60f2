"use client";

import { Alert, Button, Card, Group, TextInput } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useMutation } from "@tanstack/react-query";
import { z } from "zod";
import { environmentSleepAfterMinutes } from "../../server/input-schemas";
import { useCan } from "../auth/can";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";

/** Minutes as typed; empty or "never": the environment's applications never sleep unless they say so. */
type Values = { sleepAfter: string };
const PATHS = [["sleepAfterMinutes", "sleepAfter"]] as const;
/** `environments.update`'s rule for the default, one source with the API's. */
const schema = z.object({ sleepAfterMinutes: environmentSleepAfterMinutes.nullable() });

function minutesOf(text: string): number | null {
  const value = text.trim().toLowerCase();
  return value === "" || value === "never" ? null : Number(value);
}

/**
 * An environment's default of sleep when idle (issue 16): for its applications and containers
 * whose settings say nothing, minutes without a request after which their release stops until
 * the next one.
 * Its parent keys it by the saved value: a change made elsewhere (the CLI) gives a fresh form.
 */
export function SleepPanel({ environmentId, sleepAfterMinutes }: { environmentId: string; sleepAfterMinutes: number | null }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const canEdit = useCan("DEVELOPER");
  const update = useMutation(
    trpc.environments.update.mutationOptions({
      onSuccess: async (environment) => {
        const after = environment.sleepAfterMinutes;
        notifications.show({
          color: "green",
          message:
            after === null
              ? "Applications and containers of this environment no longer sleep by default"
              : `Applications and containers sleep after ${after} min without a request by default`,
        });
        await invalidate();
      },
    }),
  );
  const failure = update.error ? apiError(update.error) : null;
  const { form, input, unmatchedServerError } = useApiForm<Values, "sleepAfter">({
    initialValues: { sleepAfter: sleepAfterMinutes === null ? "" : String(sleepAfterMinutes) },
    validate: apiSchemaResolver(schema, (values: Values) => ({ sleepAfterMinutes: minutesOf(values.sleepAfter) }), PATHS),
    paths: PATHS,
    failure,
    readOnly: !canEdit,
  });
  return (
    <Section
      title="Sleep when idle"
      description="The default of this environment's applications and containers whose settings name none. It applies from their next deployment or restart; jobs and databases never sleep."
    >
      <Card withBorder padding="lg">
        <form
          onSubmit={form.onSubmit((values) => update.mutate({ environmentId, sleepAfterMinutes: minutesOf(values.sleepAfter) }))}
          noValidate
          aria-label="Sleep when idle"
        >
          <Group align="flex-end" gap="xs">
            <TextInput
              label="Sleep after (minutes)"
              description="Stopped after this long without a request, started again by the next one. Empty or never: always on."
              placeholder="never"
              inputMode="numeric"
              {...input("sleepAfter")}
            />
            {canEdit && (
              <Button type="submit" variant="light" loading={update.isPending}>
                Save default
              </Button>
            )}
          </Group>
          {failure && unmatchedServerError && (
            <Alert color="red" role="alert" mt="xs">
              {failure.message}
            </Alert>
          )}
        </form>
      </Card>
    </Section>
  );
}
