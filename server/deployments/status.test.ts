import { describe, expect, it } from "vitest";
import { deploymentSteps, stepStatuses, terminalStatuses, type DeploymentStep, type StepStatus } from "../../engine/protocol/events";
import { endsDeployment, projectDeployment } from "./status";

const at = new Date("2026-01-01T00:00:00Z");
const e = (step: DeploymentStep, status: StepStatus, message?: string) => ({ step, status, message, at });

describe("projectDeployment", () => {
  it("is QUEUED before the engine reports anything", () => {
    expect(projectDeployment("DEPLOY", []).status).toBe("QUEUED");
  });

  it("walks a deploy through BUILDING and DEPLOYING to DEPLOYED", () => {
    const events = [e("deployment", "started"), e("clone", "started")];
    expect(projectDeployment("DEPLOY", events).status).toBe("BUILDING");
    events.push(e("clone", "succeeded"), e("build", "succeeded"), e("start", "started"));
    expect(projectDeployment("DEPLOY", events).status).toBe("DEPLOYING");
    events.push(e("deployment", "succeeded"));
    const done = projectDeployment("DEPLOY", events);
    expect(done.status).toBe("DEPLOYED");
    expect(done.finishedAt).toEqual(at);
  });

  it("names a failed build BUILD_ERROR and a failed health check DEPLOYMENT_ERROR", () => {
    const build = [e("deployment", "started"), e("build", "started"), e("build", "failed"), e("deployment", "failed", "build exited 1")];
    expect(projectDeployment("DEPLOY", build)).toMatchObject({ status: "BUILD_ERROR", message: "build exited 1" });
    const health = [e("deployment", "started"), e("health_check", "started"), e("health_check", "failed"), e("deployment", "failed")];
    expect(projectDeployment("DEPLOY", health).status).toBe("DEPLOYMENT_ERROR");
  });

  it("keeps CANCELING while steps go on, until the engine reports the cancel", () => {
    const events = [e("deployment", "started"), e("build", "started"), e("deployment", "requested"), e("build", "succeeded"), e("start", "started")];
    expect(projectDeployment("DEPLOY", events).status).toBe("CANCELING");
    events.push(e("deployment", "canceled"));
    expect(projectDeployment("DEPLOY", events).status).toBe("CANCELED");
  });

  it("ends a deployment exactly on the events endsDeployment names, whatever its action and state", () => {
    for (const step of deploymentSteps)
      for (const status of stepStatuses)
        for (const before of [[], [e("deployment", "started")], [e("deployment", "started"), e("deployment", "requested")]])
          for (const action of ["DEPLOY", "RESTART", "STOP", "DELETE"] as const) {
            const ended = terminalStatuses.has(projectDeployment(action, [...before, e(step, status)]).status);
            expect({ step, status, ended }).toEqual({ step, status, ended: endsDeployment({ step, status }) });
          }
  });

  it("ignores events after a terminal status", () => {
    const events = [e("deployment", "started"), e("deployment", "succeeded"), e("deployment", "failed")];
    expect(projectDeployment("STOP", events).status).toBe("STOPPED");
  });

  it("projects stop and delete actions", () => {
    expect(projectDeployment("STOP", [e("deployment", "started"), e("stop", "started")]).status).toBe("STOPPING");
    expect(projectDeployment("DELETE", [e("deployment", "started"), e("deployment", "succeeded")]).status).toBe("DELETED");
  });
});

describe("projectDeployment with services side by side (issue 16)", () => {
  const [a, b] = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"];
  const s = (serviceId: string, step: DeploymentStep, status: StepStatus) => ({ serviceId, step, status, at });

  it("stays BUILDING while any service builds, and shows DEPLOYING once none does", () => {
    const events = [e("deployment", "started"), s(a, "build", "started"), s(b, "build", "started"), s(a, "build", "succeeded"), s(a, "start", "started")];
    expect(projectDeployment("DEPLOY", events).status).toBe("BUILDING");
    events.push(s(b, "build", "succeeded"));
    expect(projectDeployment("DEPLOY", events).status).toBe("DEPLOYING");
    events.push(s(b, "start", "started"), s(a, "start", "succeeded"), s(b, "start", "succeeded"));
    expect(projectDeployment("DEPLOY", events).status).toBe("DEPLOYING");
  });

  it("names a deployment whose only failure is a build BUILD_ERROR, even when a neighbour then went live", () => {
    const events = [
      e("deployment", "started"),
      s(a, "build", "started"),
      s(b, "build", "started"),
      s(b, "build", "failed"),
      s(a, "build", "succeeded"),
      s(a, "switch", "succeeded"),
      s("33333333-3333-4333-8333-333333333333", "clone", "skipped"),
      e("deployment", "failed", "1 of 3 services deployed, 1 not started; b: build failed"),
    ];
    expect(projectDeployment("DEPLOY", events)).toMatchObject({ status: "BUILD_ERROR", message: "1 of 3 services deployed, 1 not started; b: build failed" });
  });
});
