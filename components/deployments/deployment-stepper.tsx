"use client";

import { Alert, Card, Code, Group, List, Loader, SimpleGrid, Text, ThemeIcon, Title } from "@mantine/core";
import { IconAlertTriangle, IconBan, IconCheck, IconCircleDashed, IconPlayerSkipForward, IconX } from "@tabler/icons-react";
import { formatAbsolute, useNow } from "../relative-time";
import { formatDuration, shortSha } from "./format";
import { STEP_LABELS, type ServiceSteps, type StepState, type StepperModel, type StepView } from "./steps";

const STATE_LABELS: Record<StepState, string> = {
  pending: "Pending",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  canceled: "Canceled",
  skipped: "Skipped",
};

function StepIcon({ state }: { state: StepState }) {
  switch (state) {
    case "running":
      return (
        <ThemeIcon variant="light" color="blue" size={24} radius="xl">
          <Loader size={12} color="blue" />
        </ThemeIcon>
      );
    case "succeeded":
      return (
        <ThemeIcon variant="light" color="green" size={24} radius="xl">
          <IconCheck size={14} />
        </ThemeIcon>
      );
    case "failed":
      return (
        <ThemeIcon variant="light" color="red" size={24} radius="xl">
          <IconX size={14} />
        </ThemeIcon>
      );
    case "canceled":
      return (
        <ThemeIcon variant="light" color="yellow" size={24} radius="xl">
          <IconBan size={14} />
        </ThemeIcon>
      );
    case "skipped":
      return (
        <ThemeIcon variant="light" color="gray" size={24} radius="xl">
          <IconPlayerSkipForward size={14} />
        </ThemeIcon>
      );
    default:
      return (
        <ThemeIcon variant="light" color="gray" size={24} radius="xl">
          <IconCircleDashed size={14} />
        </ThemeIcon>
      );
  }
}

function StepRow({ step, finished, now }: { step: StepView; finished: boolean; now: number }) {
  const label = STEP_LABELS[step.step];
  const elapsed = step.state === "running" && step.startedAt ? now - new Date(step.startedAt).getTime() : step.durationMs;
  // A step that never ran in a deployment that is over was skipped, not "pending".
  const stateLabel = step.state === "pending" && finished ? "Skipped" : STATE_LABELS[step.state];
  return (
    <li data-step={step.step} data-state={step.state} aria-label={`${label}: ${stateLabel}`} style={{ listStyle: "none" }}>
      <Group gap="sm" wrap="nowrap" align="flex-start" py={6}>
        <StepIcon state={step.state} />
        <div style={{ flex: 1, minWidth: 0 }}>
          <Group justify="space-between" gap="xs" wrap="nowrap">
            <Text size="sm" fw={step.state === "running" ? 600 : 500} c={step.state === "pending" || step.state === "skipped" ? "dimmed" : undefined}>
              {label}
            </Text>
            <Text size="xs" c="dimmed" ff="monospace">
              {step.state === "pending" || step.state === "skipped" ? stateLabel : formatDuration(elapsed)}
            </Text>
          </Group>
          {step.message && (
            <Text size="xs" c={step.state === "failed" ? "red" : "dimmed"} style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>
              {step.message}
            </Text>
          )}
        </div>
      </Group>
    </li>
  );
}

/** Consecutive services of one stage, in the model's order (the stages' order). */
function stagesOf(services: ServiceSteps[]): { stage: string | null; services: ServiceSteps[] }[] {
  const groups: { stage: string | null; services: ServiceSteps[] }[] = [];
  for (const service of services) {
    const last = groups.at(-1);
    if (last && last.stage === service.stage) last.services.push(service);
    else groups.push({ stage: service.stage, services: [service] });
  }
  return groups;
}

/**
 * The live steps of a deployment, per service: clone, build, start, health check, switch and
 * drain for a deploy (one step for stop, restart, delete), each with its state and duration;
 * grouped by stage when the deployment has more than one (services of a stage run side by side).
 */
export function DeploymentStepper({ model, serviceNames, finished }: { model: StepperModel; serviceNames: Record<string, string>; finished: boolean }) {
  const running = model.services.some((service) => service.steps.some((step) => step.state === "running"));
  const now = useNow(running ? 500 : 60_000);
  return (
    <>
      {model.notes.length > 0 && (
        <Alert color="orange" icon={<IconAlertTriangle size={18} />} title="The engine stopped responding" mb="md">
          <List size="sm" spacing={2}>
            {model.notes.map((note) => (
              <List.Item key={note.id}>
                <Text span size="sm" c="dimmed">
                  {formatAbsolute(note.at)}:{" "}
                </Text>
                {note.message}
              </List.Item>
            ))}
          </List>
        </Alert>
      )}
      {model.services.length === 0 ? (
        <Text size="sm" c="dimmed">
          {finished ? "No service steps were recorded." : "Waiting for an engine to pick this deployment up…"}
        </Text>
      ) : (
        stagesOf(model.services).map(({ stage, services }, index, all) => (
          <section key={stage ?? "services"} aria-label={stage && all.length > 1 ? `Stage ${index + 1}: ${stage}` : undefined}>
            {stage && all.length > 1 && (
              <Title order={3} fz="sm" fw={600} c="dimmed" mt={index > 0 ? "md" : 0} mb="xs">
                Stage {index + 1} · {stage}
              </Title>
            )}
            <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }} spacing="md">
              {services.map((service) => {
                const name = serviceNames[service.serviceId] ?? service.serviceId.slice(0, 8);
                return (
                  <Card key={service.serviceId} withBorder padding="md" radius="md" component="section" aria-label={`Steps of ${name}`}>
                    <Group justify="space-between" mb={4}>
                      <Title order={stage && all.length > 1 ? 4 : 3} fz="md" fw={600}>
                        {name}
                      </Title>
                      {service.commit && <Code title={service.commit}>{shortSha(service.commit)}</Code>}
                    </Group>
                    <ol style={{ margin: 0, padding: 0 }} aria-label={`Steps of ${name}`}>
                      {service.steps.map((step) => (
                        <StepRow key={step.step} step={step} finished={finished} now={now} />
                      ))}
                    </ol>
                  </Card>
                );
              })}
            </SimpleGrid>
          </section>
        ))
      )}
    </>
  );
}
