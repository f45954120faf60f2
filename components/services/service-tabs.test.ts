import { describe, expect, it } from "vitest";
import { serviceTabHref, serviceTabOf, serviceTabs } from "./service-tabs";

const labels = (kind: Parameters<typeof serviceTabs>[0]) => serviceTabs(kind).map((tab) => tab.label);

describe("service tabs", () => {
  it("gives each kind the tabs it has a use for", () => {
    const all = ["Overview", "Deployments", "Logs", "Metrics", "Shell", "Variables", "Domains", "Settings"];
    expect(labels("APPLICATION")).toEqual(all);
    expect(labels("CONTAINER")).toEqual(all);
    expect(labels("DATABASE")).toEqual(all.filter((label) => label !== "Domains"));
    expect(labels("JOB")).toEqual(["Overview", "Deployments", "Logs", "Variables", "Settings"]);
  });

  it("reads the tab from the URL and builds the URL of a tab", () => {
    const id = "3f1c2a9e-0000-4000-8000-000000000001";
    expect(serviceTabOf(`/services/${id}`, id)).toBe("");
    expect(serviceTabOf(`/services/${id}/logs`, id)).toBe("logs");
    expect(serviceTabOf(`/services/${id}/settings/`, id)).toBe("settings");
    expect(serviceTabOf(`/services/other/logs`, id)).toBeNull();
    expect(serviceTabHref(id, "")).toBe(`/services/${id}`);
    expect(serviceTabHref(id, "variables")).toBe(`/services/${id}/variables`);
  });
});
