import { describe, expect, it } from "vitest";
import type { ServiceRuntime } from "../db/schema";
import type { DeploymentStep, StepStatus } from "../../engine/protocol/events";
import { environmentInProgress, environmentStatus, outcomeOf, serviceStatus, shownChanged, speaksForEnvironment, type ServiceEvents } from "./live-status";

const finishedAt = new Date("2026-01-01T12:00:00Z");
const runtime = (state: ServiceRuntime["state"], reportedAt: string, extra: Partial<ServiceRuntime> = {}): ServiceRuntime => ({
  state,
  releaseId: "r1",
  restarts: 0,
  reportedAt,
  ...extra,
});
const before = "2026-01-01T11:59:00Z";
const after = "2026-01-01T12:00:05Z";

/** What a deployment's events say of a service: nothing started unless `fields` say otherwise. */
const events = (fields: Partial<ServiceEvents> = {}): ServiceEvents => ({
  switched: false,
  failedStep: null,
  canceled: false,
  switchedAt: null,
  latest: null,
  ...fields,
});
const at = (step: DeploymentStep, status: StepStatus, time = "2026-01-01T11:58:00Z") => ({ step, status, at: new Date(time) });

describe("environmentStatus", () => {
  it("is EMPTY without services, NEVER_DEPLOYED without deployments, else the latest deployment's", () => {
    expect(environmentStatus(0, { status: "DEPLOYED", finishedAt })).toBe("EMPTY");
    expect(environmentStatus(2, undefined)).toBe("NEVER_DEPLOYED");
    expect(environmentStatus(2, { status: "BUILDING", finishedAt: null })).toBe("BUILDING");
  });
});

describe("serviceStatus", () => {
  it("shows the deployment on its way over any earlier report", () => {
    expect(serviceStatus({ status: "QUEUED", finishedAt: null }, null)).toBe("QUEUED");
    expect(serviceStatus({ status: "BUILDING", finishedAt: null }, runtime("running", after))).toBe("BUILDING");
  });

  it("says DEPLOYED, not never deployed, between a finished deployment and the engine's first report", () => {
    expect(serviceStatus({ status: "DEPLOYED", finishedAt }, null)).toBe("DEPLOYED");
    // A report from before the deployment finished describes the previous release.
    expect(serviceStatus({ status: "DEPLOYED", finishedAt }, runtime("crashed", before))).toBe("DEPLOYED");
    expect(serviceStatus({ status: "STOPPED", finishedAt }, runtime("running", before))).toBe("STOPPED");
  });

  it("shows what the engine reported since the deployment finished", () => {
    expect(serviceStatus({ status: "DEPLOYED", finishedAt }, runtime("running", after))).toBe("running");
    expect(serviceStatus({ status: "DEPLOYED", finishedAt }, runtime("crashed", after))).toBe("crashed");
    // A failed deployment left the previous release running.
    expect(serviceStatus({ status: "BUILD_ERROR", finishedAt }, runtime("running", after))).toBe("running");
    expect(serviceStatus({ status: "BUILD_ERROR", finishedAt }, null)).toBe("BUILD_ERROR");
  });

  it("is NEVER_DEPLOYED only with no deployment and no report", () => {
    expect(serviceStatus(undefined, null)).toBe("NEVER_DEPLOYED");
    expect(serviceStatus(undefined, runtime("running", before))).toBe("running");
  });
});

describe("serviceStatus after a deployment that went live for some services and failed for others (issue 16)", () => {
  const partlyFailed = (serviceEvents: { switched: boolean; failedStep: "build" | "health_check" | null; canceled: boolean }) => ({
    status: "BUILD_ERROR" as const,
    finishedAt,
    serviceEvents: events(serviceEvents),
  });
  const wentLive = partlyFailed({ switched: true, failedStep: null, canceled: false });

  it("shows DEPLOYED for a service that went live, then what the engine reports of it", () => {
    expect(serviceStatus(wentLive, null)).toBe("DEPLOYED");
    expect(serviceStatus(wentLive, runtime("crashed", before))).toBe("DEPLOYED");
    expect(serviceStatus(wentLive, runtime("running", after))).toBe("running");
  });

  it("shows the failure of the service's own step, not the deployment's", () => {
    expect(serviceStatus(partlyFailed({ switched: false, failedStep: "build", canceled: false }), null)).toBe("BUILD_ERROR");
    expect(serviceStatus(partlyFailed({ switched: false, failedStep: "health_check", canceled: false }), null)).toBe("DEPLOYMENT_ERROR");
    // Switched, then its drain failed: a failure, as the deployment's summary says.
    expect(serviceStatus(partlyFailed({ switched: true, failedStep: "health_check", canceled: false }), null)).toBe("DEPLOYMENT_ERROR");
    expect(serviceStatus({ status: "CANCELED", finishedAt, serviceEvents: events({ canceled: true }) }, null)).toBe("CANCELED");
  });

  it("shows the deployment's status when its events say nothing of the service", () => {
    expect(serviceStatus(partlyFailed({ switched: false, failedStep: null, canceled: false }), null)).toBe("BUILD_ERROR");
  });
});

describe("serviceStatus while a deployment is on its way: each service's own, from its own events (F1)", () => {
  const running = (serviceEvents: ServiceEvents, status: "BUILDING" | "DEPLOYING" | "CANCELING" | "DELETING" = "BUILDING", action?: "DEPLOY" | "DELETE") => ({
    status,
    finishedAt: null,
    action,
    serviceEvents,
  });

  it("is QUEUED before the service's first step, then the phase of its current step", () => {
    expect(serviceStatus(running(events()), runtime("running", before))).toBe("QUEUED");
    expect(serviceStatus(running(events({ latest: at("clone", "started") })), null)).toBe("BUILDING");
    expect(serviceStatus(running(events({ latest: at("build", "succeeded") })), null)).toBe("BUILDING");
    // The deployment builds others; this one is past its build.
    expect(serviceStatus(running(events({ latest: at("health_check", "started") })), runtime("running", before))).toBe("DEPLOYING");
    expect(serviceStatus(running(events({ latest: at("delete", "started") }), "DELETING", "DELETE"), null)).toBe("DELETING");
  });

  it("shows a service's own failure while the others still build", () => {
    expect(serviceStatus(running(events({ failedStep: "build", latest: at("build", "failed") })), runtime("running", after))).toBe("BUILD_ERROR");
    expect(serviceStatus(running(events({ failedStep: "start", latest: at("start", "failed") })), null)).toBe("DEPLOYMENT_ERROR");
    expect(outcomeOf(running(events({ failedStep: "build", latest: at("build", "failed") })))).toBe("BUILD_ERROR");
  });

  it("shows a service that switched as deployed, then as the engine reports its new release", () => {
    const switchedAt = new Date("2026-01-01T12:00:00Z");
    const live = running(events({ switched: true, switchedAt, latest: at("drain", "started", "2026-01-01T12:00:01Z") }), "DEPLOYING");
    expect(serviceStatus(live, null)).toBe("DEPLOYED");
    // A report from before the switch describes the release it replaced.
    expect(serviceStatus(live, runtime("crashed", before))).toBe("DEPLOYED");
    expect(serviceStatus(live, runtime("running", after))).toBe("running");
    expect(outcomeOf(live)).toBe("DEPLOYED");
  });

  it("shows a service deleted while the others are still being deleted as DELETED", () => {
    expect(serviceStatus(running(events({ latest: at("delete", "succeeded") }), "DELETING", "DELETE"), null)).toBe("DELETED");
  });

  it("shows CANCELING for a service not done while the deployment is canceled, CANCELED once its step was", () => {
    expect(serviceStatus(running(events({ latest: at("build", "started") }), "CANCELING"), null)).toBe("CANCELING");
    expect(serviceStatus(running(events({ canceled: true, latest: at("build", "canceled") }), "CANCELING"), null)).toBe("CANCELED");
  });

  it("is the deployment's status when its events are not known", () => {
    expect(serviceStatus({ status: "BUILDING", finishedAt: null }, runtime("running", after))).toBe("BUILDING");
  });
});

describe("the environment's status beside deployments of some of its services", () => {
  const of = (serviceIds: string[] | null, status: "DELETING" | "DELETED" | "BUILDING" | "BUILD_ERROR" | "STOPPED", action: "DEPLOY" | "DELETE" | "STOP") => ({
    serviceIds,
    status,
    action,
  });

  it("is decided by deployments of the whole environment, and by finished deploys of some of its services only", () => {
    expect(speaksForEnvironment(of(null, "BUILDING", "DEPLOY"))).toBe(true);
    expect(speaksForEnvironment(of(null, "DELETING", "DELETE"))).toBe(true);
    expect(speaksForEnvironment(of(["a"], "BUILD_ERROR", "DEPLOY"))).toBe(true);
    // Deleting one service, stopping one, or a deploy of one still on its way, says nothing of the others.
    expect(speaksForEnvironment(of(["a"], "DELETING", "DELETE"))).toBe(false);
    expect(speaksForEnvironment(of(["a"], "DELETED", "DELETE"))).toBe(false);
    expect(speaksForEnvironment(of(["a"], "STOPPED", "STOP"))).toBe(false);
    expect(speaksForEnvironment(of(["a"], "BUILDING", "DEPLOY"))).toBe(false);
  });

  it("lists what is on its way for some services, oldest first, by service name", () => {
    const names = new Map([
      ["a", "html"],
      ["b", "vite"],
    ]);
    const deployment = (id: string, serviceIds: string[] | null, status: "DELETING" | "QUEUED" | "DEPLOYED", createdAt: string) => ({
      id,
      action: status === "DELETING" ? ("DELETE" as const) : ("DEPLOY" as const),
      status,
      serviceIds,
      createdAt: new Date(createdAt),
    });
    const inProgress = environmentInProgress(
      [
        deployment("d2", ["b"], "QUEUED", "2026-01-01T12:00:02Z"),
        deployment("d1", ["a"], "DELETING", "2026-01-01T12:00:01Z"),
        deployment("d0", ["b"], "DEPLOYED", "2026-01-01T12:00:00Z"),
        deployment("d3", null, "QUEUED", "2026-01-01T12:00:03Z"),
      ],
      (id) => names.get(id),
    );
    expect(inProgress).toEqual([
      { deploymentId: "d1", action: "DELETE", status: "DELETING", services: ["html"] },
      { deploymentId: "d2", action: "DEPLOY", status: "QUEUED", services: ["vite"] },
    ]);
  });
});

describe("shownChanged", () => {
  const deployed = { status: "DEPLOYED" as const, finishedAt };
  it("is true for the first report, and for the first report after a deployment even when the state is the same", () => {
    expect(shownChanged(deployed, null, runtime("running", after))).toBe(true);
    expect(shownChanged(deployed, runtime("running", before), runtime("running", after))).toBe(true);
  });

  it("is false for a report that repeats what pages show, true when the state, release or restarts change", () => {
    const later = "2026-01-01T12:00:10Z";
    expect(shownChanged(deployed, runtime("running", after), runtime("running", later))).toBe(false);
    expect(shownChanged(deployed, runtime("running", after), runtime("crashed", later))).toBe(true);
    expect(shownChanged(deployed, runtime("running", after), runtime("running", later, { releaseId: "r2" }))).toBe(true);
    expect(shownChanged(deployed, runtime("running", after), runtime("running", later, { restarts: 1 }))).toBe(true);
  });
});
