import { describe, expect, it } from "vitest";
import { triggerOf } from "./trigger";

const row = { origin: "UI" as const, actorLabel: "ada@example.com", rollbackOf: null, cause: null };
const ROLLED_TO = "00000000-0000-4000-8000-000000000001";

describe("triggerOf", () => {
  it("names a member, a token, a push and the scheduler from the origin and actor", () => {
    expect(triggerOf(row)).toMatchObject({ kind: "user", by: "ada@example.com", via: "UI" });
    expect(triggerOf({ ...row, origin: "CLI", actorLabel: "token:ci" })).toMatchObject({ kind: "token", by: "token:ci", via: "CLI" });
    expect(triggerOf({ ...row, origin: "WEBHOOK", actorLabel: "github:octocat" })).toMatchObject({ kind: "push", by: "github:octocat" });
    expect(triggerOf({ ...row, origin: "SCHEDULER", actorLabel: "scheduler" })).toMatchObject({ kind: "schedule" });
  });

  it("says a rollback, a promotion or a clone first, with where it comes from", () => {
    expect(triggerOf({ ...row, rollbackOf: ROLLED_TO })).toMatchObject({ kind: "rollback", fromDeploymentId: ROLLED_TO, by: "ada@example.com" });
    const promote = { kind: "promote", fromEnvironmentId: "e", fromEnvironment: "staging", fromDeploymentId: ROLLED_TO } as const;
    expect(triggerOf({ ...row, cause: promote })).toMatchObject({ kind: "promote", fromEnvironment: "staging", fromDeploymentId: ROLLED_TO });
    expect(triggerOf({ ...row, cause: { kind: "clone", fromEnvironmentId: "e", fromEnvironment: "main" } })).toMatchObject({
      kind: "clone",
      fromEnvironment: "main",
      fromDeploymentId: null,
    });
  });
});
