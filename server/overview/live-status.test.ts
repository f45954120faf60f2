import { describe, expect, it } from "vitest";
import type { ServiceRuntime } from "../db/schema";
import { environmentStatus, serviceStatus, shownChanged } from "./live-status";

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
    serviceEvents,
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
    expect(serviceStatus({ status: "CANCELED", finishedAt, serviceEvents: { switched: false, failedStep: null, canceled: true } }, null)).toBe("CANCELED");
  });

  it("shows the deployment's status while it is on its way, and when its events say nothing of the service", () => {
    expect(serviceStatus({ status: "BUILDING", finishedAt: null, serviceEvents: { switched: true, failedStep: null, canceled: false } }, null)).toBe(
      "BUILDING",
    );
    expect(serviceStatus(partlyFailed({ switched: false, failedStep: null, canceled: false }), null)).toBe("BUILD_ERROR");
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
