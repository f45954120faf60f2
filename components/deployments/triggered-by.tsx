import { Anchor } from "@mantine/core";
import Link from "next/link";
import { originLabel } from "./format";
import type { Deployment } from "./steps";
import { shortId } from "./title";

function DeploymentLink({ id }: { id: string }) {
  return (
    <Anchor component={Link} href={`/deployments/${id}`} inherit>
      deployment {shortId(id)}
    </Anchor>
  );
}

/** Who or what made a deployment, in a sentence for its page (issue 15, item 2). */
export function TriggeredBy({ trigger }: { trigger: Deployment["trigger"] }) {
  const by = (
    <>
      {" "}
      by {trigger.by} · {originLabel(trigger.via)}
    </>
  );
  switch (trigger.kind) {
    case "rollback":
      return (
        <span aria-label="Triggered by">
          <Anchor component={Link} href={`/deployments/${trigger.fromDeploymentId}`} inherit>
            Rollback to {shortId(trigger.fromDeploymentId!)}
          </Anchor>
          {by}
        </span>
      );
    case "promote":
      return (
        <span aria-label="Triggered by">
          Promoted from {trigger.fromEnvironment} (<DeploymentLink id={trigger.fromDeploymentId!} />){by}
        </span>
      );
    case "clone":
      return (
        <span aria-label="Triggered by">
          First deployment of a clone of {trigger.fromEnvironment}
          {by}
        </span>
      );
    case "push":
      return <span aria-label="Triggered by">Git push by {trigger.by}</span>;
    case "schedule":
      return <span aria-label="Triggered by">The environment&apos;s schedule</span>;
    case "token":
      return (
        <span aria-label="Triggered by">
          API token {trigger.by.replace(/^token:/, "")} · {originLabel(trigger.via)}
        </span>
      );
    default:
      return (
        <span aria-label="Triggered by">
          {originLabel(trigger.via)} · {trigger.by}
        </span>
      );
  }
}
