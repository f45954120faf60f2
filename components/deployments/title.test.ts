import { describe, expect, it } from "vitest";
import { canRollBackTo, deploymentTitle } from "./title";

const WEB = "11111111-1111-4111-8111-111111111111";
const API = "22222222-2222-4222-8222-222222222222";
const DB = "33333333-3333-4333-8333-333333333333";
const EARLIER = "abcdef12-3456-4789-8abc-def123456789";

const deployment = (extra: Partial<Parameters<typeof deploymentTitle>[0]> = {}) => ({
  id: "99999999-9999-4999-8999-999999999999",
  action: "DEPLOY" as const,
  serviceIds: null,
  serviceNames: { [WEB]: "web", [API]: "api", [DB]: "db" },
  rollbackOf: null,
  ...extra,
});

describe("deploymentTitle", () => {
  it("names the one service a deployment acts on, from its snapshot", () => {
    expect(deploymentTitle(deployment({ serviceIds: [WEB] }))).toBe("Deploy web");
    expect(deploymentTitle(deployment({ action: "RESTART", serviceIds: [API] }))).toBe("Restart api");
  });

  it("names a deleted service from the snapshot, where the environment no longer lists it", () => {
    expect(deploymentTitle(deployment({ action: "DELETE", serviceIds: [DB] }), { [WEB]: "web" })).toBe("Delete db");
  });

  it("falls back to the environment's services, then to a short id", () => {
    expect(deploymentTitle(deployment({ serviceIds: [WEB], serviceNames: {} }), { [WEB]: "web-now" })).toBe("Deploy web-now");
    expect(deploymentTitle(deployment({ serviceIds: [WEB], serviceNames: {} }))).toBe("Deploy 11111111");
  });

  it("counts several services and says environment for all of them", () => {
    expect(deploymentTitle(deployment({ serviceIds: [WEB, API, DB] }))).toBe("Deploy 3 services");
    expect(deploymentTitle(deployment())).toBe("Deploy environment");
    expect(deploymentTitle(deployment({ action: "STOP" }))).toBe("Stop environment");
  });

  it("says what a rollback rolls back, and to which deployment", () => {
    expect(deploymentTitle(deployment({ serviceIds: [WEB], rollbackOf: EARLIER }))).toBe("Roll back web to abcdef12");
    expect(deploymentTitle(deployment({ serviceIds: [WEB, API], rollbackOf: EARLIER }))).toBe("Roll back 2 services to abcdef12");
  });
});

describe("canRollBackTo", () => {
  const row = (id: string, extra: Partial<Parameters<typeof canRollBackTo>[0]> = {}) => ({
    id,
    action: "DEPLOY" as const,
    status: "DEPLOYED" as const,
    serviceIds: null as string[] | null,
    ...extra,
  });

  it("offers an earlier success, never the latest one", () => {
    const history = [row("c"), row("b"), row("a")];
    expect(canRollBackTo(history[0]!, history)).toBe(false);
    expect(canRollBackTo(history[1]!, history)).toBe(true);
    expect(canRollBackTo(history[2]!, history)).toBe(true);
  });

  it("does not offer failures, stops, or a success only followed by failures", () => {
    const history = [row("d", { status: "BUILD_ERROR" }), row("c", { action: "STOP", status: "STOPPED" }), row("b", { status: "BUILD_ERROR" }), row("a")];
    for (const candidate of history) expect(canRollBackTo(candidate, history)).toBe(false);
  });

  it("looks at later deployments of the same services only", () => {
    const history = [row("b", { serviceIds: [API] }), row("a", { serviceIds: [WEB] })];
    expect(canRollBackTo(history[1]!, history)).toBe(false);
    const later = [row("c", { serviceIds: [WEB, API] }), ...history];
    expect(canRollBackTo(later[2]!, later)).toBe(true);
  });
});
