import { describe, expect, it } from "vitest";
import { deriveStepper, type DeploymentEvent } from "./steps";

let id = 0;
const event = (
  serviceId: string | null,
  step: DeploymentEvent["step"],
  status: DeploymentEvent["status"],
  extra: Partial<DeploymentEvent> = {},
): DeploymentEvent => ({
  id: ++id,
  serviceId,
  step,
  status,
  message: null,
  durationMs: null,
  commit: null,
  at: new Date(1_700_000_000_000 + id * 1000).toISOString(),
  ...extra,
});

describe("deriveStepper", () => {
  it("shows each step's latest state, pending ones included, and lease expiries as notes", () => {
    const events = [
      event(null, "deployment", "started"),
      event("a", "clone", "started"),
      event(null, "lease", "expired", { message: "handed out again (attempt 2)" }),
      event("a", "clone", "started"),
      event("a", "clone", "succeeded", { durationMs: 400 }),
      event("a", "build", "started"),
    ];
    const model = deriveStepper({ action: "DEPLOY", status: "BUILDING", commits: { a: "abc1234def" } }, ["a", "b"], events);
    expect(model.notes.map((note) => note.message)).toEqual(["handed out again (attempt 2)"]);
    expect(model.services.map((service) => service.serviceId)).toEqual(["a", "b"]);
    const [a, b] = model.services;
    expect(a!.commit).toBe("abc1234def");
    expect(a!.steps.map((step) => [step.step, step.state])).toEqual([
      ["clone", "succeeded"],
      ["build", "running"],
      ["start", "pending"],
      ["health_check", "pending"],
      ["switch", "pending"],
      ["drain", "pending"],
    ]);
    expect(a!.steps[0]!.durationMs).toBe(400);
    expect(b!.steps.every((step) => step.state === "pending")).toBe(true);
    expect(model.timeline).toHaveLength(1);
  });

  it("marks a step still running when the deployment ended as interrupted", () => {
    const events = [event("a", "build", "started"), event(null, "deployment", "canceled")];
    const model = deriveStepper({ action: "DEPLOY", status: "CANCELED", commits: {} }, ["a"], events);
    expect(model.services[0]!.steps.find((step) => step.step === "build")!.state).toBe("canceled");
  });

  it("uses the action's own step for stop, restart and delete", () => {
    const model = deriveStepper({ action: "STOP", status: "STOPPED", commits: {} }, ["a"], [event("a", "stop", "succeeded", { durationMs: 12 })]);
    expect(model.services[0]!.steps).toEqual([{ step: "stop", state: "succeeded", durationMs: 12, startedAt: null, message: null }]);
  });
});

describe("deriveStepper with stages (issue 16)", () => {
  it("keeps each service's steps apart when side-by-side services interleave, in the order of the stages", () => {
    const events = [
      event(null, "deployment", "started"),
      event("api", "clone", "started"),
      event("web", "clone", "started"),
      event("web", "clone", "succeeded", { durationMs: 300 }),
      event("api", "clone", "failed", { message: "repository not found" }),
      event("web", "build", "started"),
      event("late", "clone", "skipped", { message: "not started: stage apps failed (api)" }),
    ];
    const stages = [
      { name: "apps", serviceIds: ["api", "web"] },
      { name: "frontends", serviceIds: ["late"] },
    ];
    // Events name web before api; the stages' order wins.
    const model = deriveStepper({ action: "DEPLOY", status: "BUILDING", commits: {}, stages }, ["late", "web", "api"], events);
    expect(model.services.map((service) => [service.serviceId, service.stage])).toEqual([
      ["api", "apps"],
      ["web", "apps"],
      ["late", "frontends"],
    ]);
    const [api, web, late] = model.services;
    expect(api!.steps.slice(0, 2).map((step) => step.state)).toEqual(["failed", "pending"]);
    expect(web!.steps.slice(0, 3).map((step) => step.state)).toEqual(["succeeded", "running", "pending"]);
    // A service that never started shows every step skipped, the first with the reason.
    expect(late!.steps.every((step) => step.state === "skipped")).toBe(true);
    expect(late!.steps[0]!.message).toBe("not started: stage apps failed (api)");
  });
});
