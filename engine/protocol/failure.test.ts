import { describe, expect, it } from "vitest";
import { failureOf } from "./failure";

type DeploymentEvent = Parameters<typeof failureOf>[0][number] & { id: number; durationMs: number | null; commit: string | null; at: string };

const WEB = "00000000-0000-4000-8000-000000000001";
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

describe("failureOf", () => {
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
    expect(failureOf(events)).toEqual({
      serviceId: WEB,
      step: "build",
      summary: 'build command "npm run build" exited with code 1',
      lines: ["> build", "error: cannot find module './missing'"],
    });
  });

  it("gives a release's runtime output when it failed its health check", () => {
    const message = "the process exited with code 1 before answering its health check; its last output:\nlistening…\nError: boom";
    const failure = failureOf([event({ serviceId: WEB, step: "health_check", status: "failed", message })]);
    expect(failure).toMatchObject({
      step: "health_check",
      summary: "the process exited with code 1 before answering its health check",
      lines: ["listening…", "Error: boom"],
    });
  });

  it("falls back on the deployment's own failure, and is null when nothing failed", () => {
    expect(failureOf([event({ step: "lease", status: "expired" }), event({ step: "deployment", status: "failed", message: "no engine answered" })])).toEqual({
      serviceId: null,
      step: "deployment",
      summary: "no engine answered",
      lines: [],
    });
    expect(failureOf([event({ serviceId: WEB, step: "build", status: "succeeded" })])).toBeNull();
  });
});
