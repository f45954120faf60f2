import { describe, expect, it } from "vitest";
import { describeTally, failuresOf, tallyServices } from "./failure";

type DeploymentEvent = Parameters<typeof failuresOf>[0][number] & { id: number; durationMs: number | null; commit: string | null; at: string };

const WEB = "00000000-0000-4000-8000-000000000001";
const API = "00000000-0000-4000-8000-000000000002";
const WORKER = "00000000-0000-4000-8000-000000000003";
const DOCS = "00000000-0000-4000-8000-000000000004";
let id = 0;
const event = (fields: Partial<DeploymentEvent>): DeploymentEvent => ({
  id: ++id,
  serviceId: null,
  step: "deployment",
  status: "started",
  message: null,
  durationMs: null,
  commit: null,
  at: "2026-01-01T00:00:00.000Z",
  ...fields,
});

describe("failuresOf", () => {
  it("leads with the failed build step and the build's last lines", () => {
    const events = [
      event({ step: "deployment", status: "started" }),
      event({ serviceId: WEB, step: "clone", status: "succeeded" }),
      event({
        serviceId: WEB,
        step: "build",
        status: "failed",
        message: "build command \"npm run build\" exited with code 1; its last lines:\n> build\nerror: cannot find module './missing'\n",
      }),
      event({ step: "deployment", status: "failed", message: "web: build failed: …" }),
    ];
    expect(failuresOf(events)).toEqual([
      {
        serviceId: WEB,
        step: "build",
        summary: 'build command "npm run build" exited with code 1',
        lines: ["> build", "error: cannot find module './missing'"],
      },
    ]);
  });

  it("gives a release's runtime output when it failed its health check", () => {
    const message = "the process exited with code 1 before answering its health check; its last output:\nlistening…\nError: boom";
    const [failure] = failuresOf([event({ serviceId: WEB, step: "health_check", status: "failed", message })]);
    expect(failure).toMatchObject({
      step: "health_check",
      summary: "the process exited with code 1 before answering its health check",
      lines: ["listening…", "Error: boom"],
    });
  });

  it("falls back on the deployment's own failure, and is null when nothing failed", () => {
    expect(failuresOf([event({ step: "lease", status: "expired" }), event({ step: "deployment", status: "failed", message: "no engine answered" })])).toEqual([
      { serviceId: null, step: "deployment", summary: "no engine answered", lines: [] },
    ]);
    expect(failuresOf([event({ serviceId: WEB, step: "build", status: "succeeded" })])).toEqual([]);
  });

  it("lists every service that failed, in the order they failed, each by its own step", () => {
    const events = [
      event({ serviceId: API, step: "build", status: "started" }),
      event({
        serviceId: WEB,
        step: "build",
        status: "failed",
        message: "build command `pip install` failed (exit 1); its last lines:\nERROR: No matching distribution found for flask",
      }),
      event({ serviceId: WORKER, step: "switch", status: "succeeded" }),
      event({ serviceId: API, step: "build", status: "failed", message: "build command `pip install` failed (exit 1)" }),
      event({ step: "deployment", status: "failed", message: "2 of 4 services failed: web, api; 1 is live; web: …" }),
    ];
    expect(failuresOf(events).map((failure) => [failure.serviceId, failure.step, failure.summary])).toEqual([
      [WEB, "build", "build command `pip install` failed (exit 1)"],
      [API, "build", "build command `pip install` failed (exit 1)"],
    ]);
  });

  it("counts a step that failed and then succeeded after a re-dispatch by its last attempt", () => {
    const events = [
      event({ serviceId: WEB, step: "build", status: "failed", message: "engine lost" }),
      event({ step: "lease", status: "expired" }),
      event({ serviceId: WEB, step: "build", status: "succeeded" }),
      event({ serviceId: WEB, step: "health_check", status: "failed", message: "the process exited with code 1" }),
    ];
    expect(failuresOf(events)).toMatchObject([{ serviceId: WEB, step: "health_check" }]);
  });
});

describe("tallyServices and describeTally", () => {
  const names: Record<string, string> = { [WEB]: "flask", [API]: "upload", [WORKER]: "vite", [DOCS]: "docs" };
  const name = (id: string) => names[id] ?? id;

  it("says how many services failed, which, and how many went live or never started", () => {
    const events = [
      event({ serviceId: WORKER, step: "switch", status: "succeeded" }),
      event({ serviceId: WORKER, step: "drain", status: "succeeded" }),
      event({ serviceId: WEB, step: "build", status: "failed", message: "pip failed" }),
      event({ serviceId: API, step: "health_check", status: "failed", message: "crashed" }),
      event({ serviceId: DOCS, step: "clone", status: "skipped", message: "not started: stage web failed (flask)" }),
    ];
    const tally = tallyServices("DEPLOY", [WEB, API, WORKER, DOCS], events);
    expect(tally).toEqual({ total: 4, failed: [WEB, API], done: 1, notStarted: 1 });
    expect(describeTally("DEPLOY", tally, name)).toBe("2 of 4 services failed: flask, upload; 1 is live, 1 not started");
    expect(
      describeTally(
        "STOP",
        tallyServices(
          "STOP",
          [WEB, WORKER],
          [event({ serviceId: WORKER, step: "stop", status: "succeeded" }), event({ serviceId: WEB, step: "stop", status: "failed" })],
        ),
        name,
      ),
    ).toBe("1 of 2 services failed: flask; 1 stopped");
  });
});
