import { describe, expect, it } from "vitest";
import { inProgressLabel } from "./in-progress";

describe("inProgressLabel", () => {
  it("says what happens to which services, in the words of their status", () => {
    expect(inProgressLabel({ action: "DELETE", status: "DELETING", services: ["html"] })).toBe("deleting html");
    expect(inProgressLabel({ action: "DEPLOY", status: "BUILDING", services: ["vite", "api"] })).toBe("building vite, api");
    expect(inProgressLabel({ action: "STOP", status: "STOPPING", services: ["api"] })).toBe("stopping api");
  });

  it("says a deployment waits, or is being canceled, and shortens a long list", () => {
    expect(inProgressLabel({ action: "DELETE", status: "QUEUED", services: ["html"] })).toBe("deletion of html queued");
    expect(inProgressLabel({ action: "DEPLOY", status: "CANCELING", services: ["vite"] })).toBe("canceling the deploy of vite");
    expect(inProgressLabel({ action: "DEPLOY", status: "DEPLOYING", services: ["a", "b", "c", "d", "e"] })).toBe("deploying a, b, c and 2 more");
    expect(inProgressLabel({ action: "RESTART", status: "DEPLOYING", services: [] })).toBe("deploying some services");
  });
});
