import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { planStages } from "./deployment-plan";
import type { ServiceKind, ServiceSpec } from "./protocol";

/** Only what planStages reads of a service: its id, name and kind. */
const spec = (name: string, kind: ServiceKind) => ({ id: randomUUID(), name, kind }) as ServiceSpec;
const names = (plan: ReturnType<typeof planStages>) => plan.map((stage) => [stage.name, stage.waves.map((wave) => wave.map((service) => service.name))]);

describe("planStages", () => {
  const [db, cache, seed, migrate, api, web] = [
    spec("db", "DATABASE"),
    spec("cache", "DATABASE"),
    spec("seed", "JOB"),
    spec("migrate", "JOB"),
    spec("api", "CONTAINER"),
    spec("web", "APPLICATION"),
  ];

  it("runs databases side by side, then each job alone, then containers and applications side by side", () => {
    const plan = planStages({ services: [db, cache, seed, migrate, api, web] });
    expect(names(plan)).toEqual([["default", [["db", "cache"], ["seed"], ["migrate"], ["api", "web"]]]]);
  });

  it("keeps the snapshot's order of stages and of services inside them, reversed ones included, and leaves out empty stages", () => {
    const stages = [
      { name: "frontends", serviceIds: [web.id] },
      { name: "empty", serviceIds: [] },
      { name: "default", serviceIds: [api.id, seed.id, db.id] },
    ];
    // As the control plane lists them to stop: last stage first, servers before jobs before databases.
    expect(names(planStages({ services: [web, api, seed, db], stages }))).toEqual([
      ["frontends", [["web"]]],
      ["default", [["api"], ["seed"], ["db"]]],
    ]);
  });

  it("refuses a snapshot that leaves a service out of every stage", () => {
    expect(() => planStages({ services: [db, web], stages: [{ name: "default", serviceIds: [db.id] }] })).toThrow("the snapshot puts web in no stage");
  });
});
