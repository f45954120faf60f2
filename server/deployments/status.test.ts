import { describe, expect, it } from "vitest";
import type { DeploymentStep, StepStatus } from "../../engine/protocol/events";
import { projectDeployment } from "./status";

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

  it("ignores events after a terminal status", () => {
    const events = [e("deployment", "started"), e("deployment", "succeeded"), e("deployment", "failed")];
    expect(projectDeployment("STOP", events).status).toBe("STOPPED");
  });

  it("projects stop and delete actions", () => {
    expect(projectDeployment("STOP", [e("deployment", "started"), e("stop", "started")]).status).toBe("STOPPING");
    expect(projectDeployment("DELETE", [e("deployment", "started"), e("deployment", "succeeded")]).status).toBe("DELETED");
  });
});
