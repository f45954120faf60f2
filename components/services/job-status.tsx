"use client";

import { Badge, Code, Group, Text } from "@mantine/core";
import type { JobConfig } from "../../engine/protocol/snapshot";
import type { Service } from "../api-types";
import { formatDuration } from "../deployments/format";
import { formatAbsolute, RelativeTime } from "../relative-time";
import { Fact } from "./fact";
import { formatSeconds, LIFECYCLE_EVENTS, missedRunsSummary } from "./job-config";

type JobRun = NonNullable<NonNullable<Service["runtime"]>["lastRun"]>;
type MissedRuns = NonNullable<NonNullable<Service["runtime"]>["missed"]>;

const OUTCOMES: Record<JobRun["outcome"], { label: string; color: string }> = {
  succeeded: { label: "Succeeded", color: "green" },
  failed: { label: "Failed", color: "red" },
  timed_out: { label: "Timed out", color: "orange" },
  canceled: { label: "Canceled", color: "yellow" },
};

const RUN_TRIGGERS: Record<JobRun["trigger"], string> = {
  cron: "on schedule",
  start: "environment started",
  stop: "environment stopped",
  delete: "environment deleted",
};

export function jobConfigOf(service: Pick<Service, "kind" | "config">): JobConfig | null {
  return service.kind === "JOB" ? (service.config as JobConfig) : null;
}

export function OutcomeBadge({ outcome }: { outcome: JobRun["outcome"] }) {
  const style = OUTCOMES[outcome];
  return (
    <Badge color={style.color} variant="light" size="sm" data-outcome={outcome}>
      {style.label}
    </Badge>
  );
}

/** "Cron 0 3 * * * (Europe/Paris)" or "When the environment starts, stops". */
export function TriggerSummary({ trigger }: { trigger: JobConfig["trigger"] }) {
  if (trigger.type === "cron") {
    return (
      <Text fz="sm">
        <Code>{trigger.schedule}</Code> {trigger.timeZone}
      </Text>
    );
  }
  const events = LIFECYCLE_EVENTS.filter((event) => trigger.on.includes(event.value)).map((event) => event.label.toLowerCase());
  return <Text fz="sm">When the environment {events.join(", ")}</Text>;
}

/** A JOB's facts for the top of its page: what runs, when, its limits, and how the last run went. */
export function JobFacts({ service }: { service: Service }) {
  const config = jobConfigOf(service);
  if (!config) return null;
  const runtime = service.runtime;
  const run = runtime?.lastRun;
  return (
    <>
      <Fact label="Command">
        <Code className="break-anywhere">{config.command}</Code>
      </Fact>
      <Fact label="Trigger">
        <TriggerSummary trigger={config.trigger} />
      </Fact>
      <Fact label="Limits">
        <Text fz="sm">
          {formatSeconds(config.timeoutSeconds)} timeout, {config.retries === 0 ? "no retry" : config.retries === 1 ? "1 retry" : `${config.retries} retries`}
        </Text>
      </Fact>
      <Fact label="Last run">
        {run ? (
          <Group gap={6}>
            <OutcomeBadge outcome={run.outcome} />
            <Text fz="sm">
              <RelativeTime value={run.finishedAt} />, {run.runId === runtime?.missed?.runId ? "for the runs it missed" : RUN_TRIGGERS[run.trigger]}
            </Text>
          </Group>
        ) : (
          <Text fz="sm" c="dimmed">
            Never ran
          </Text>
        )}
      </Fact>
      <Fact label="Result">
        {run ? (
          <Text fz="sm">
            {run.exitCode === null ? "no exit code" : `exit ${run.exitCode}`} · {run.attempts === 1 ? "1 attempt" : `${run.attempts} attempts`} ·{" "}
            {formatDuration(new Date(run.finishedAt).getTime() - new Date(run.startedAt).getTime())}
          </Text>
        ) : (
          <Text fz="sm" c="dimmed">
            —
          </Text>
        )}
      </Fact>
      {config.trigger.type === "cron" && (
        <Fact label="Missed runs">
          {runtime?.missed ? (
            <MissedRunsFact missed={runtime.missed} />
          ) : (
            <Text fz="sm" c="dimmed">
              None
            </Text>
          )}
        </Fact>
      )}
      <Fact label="Next run">
        {config.trigger.type !== "cron" ? (
          <Text fz="sm" c="dimmed">
            With the environment
          </Text>
        ) : runtime?.nextRunAt ? (
          <Text fz="sm">
            <RelativeTime value={runtime.nextRunAt} />
          </Text>
        ) : (
          <Text fz="sm" c="dimmed">
            Not scheduled (deploy it)
          </Text>
        )}
      </Fact>
    </>
  );
}

/** When the engine was away over scheduled times: how many, when, and what it did on its return. */
function MissedRunsFact({ missed }: { missed: MissedRuns }) {
  const span = missed.count === 1 ? formatAbsolute(missed.firstAt) : `${formatAbsolute(missed.firstAt)} to ${formatAbsolute(missed.lastAt)}`;
  return (
    <Text fz="sm" data-missed-action={missed.action}>
      {missedRunsSummary(missed)} (<RelativeTime value={missed.detectedAt} />; scheduled {span})
    </Text>
  );
}
