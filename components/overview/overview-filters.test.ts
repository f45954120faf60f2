import { describe, expect, it } from "vitest";
import { applyFilters, filtersFromQuery, previewEnvironments, queryFromFilters, type OverviewFilters } from "./overview-filters";
import type { OverviewProject } from "./use-overview";

type Environment = OverviewProject["environments"][number];
type Service = Environment["services"][number];

const service = (name: string, status: Service["status"]): Service => ({
  id: name,
  name,
  kind: "APPLICATION",
  url: null,
  status,
  runtime: null,
  lastDeployment: null,
});
const environment = (
  name: string,
  mode: Environment["mode"],
  status: Environment["status"],
  services: Service[],
  extra: Partial<Environment> = {},
): Environment => ({
  id: name,
  name,
  mode,
  cluster: { id: "c", name: "local" },
  status,
  partlyDeployed: null,
  inProgress: [],
  clonedFrom: null,
  expiresAt: null,
  preview: null,
  services,
  ...extra,
});

const projects: OverviewProject[] = [
  {
    id: "shop",
    name: "shop",
    environments: [
      environment("production", "PRODUCTION", "DEPLOYED", [service("web", "running"), service("worker", "crashed")]),
      environment("pr-7", "PREVIEW", "BUILDING", [service("web", "BUILDING")], { preview: { number: 7, headBranch: "fix", closedAt: null } }),
    ],
  },
  { id: "blog", name: "blog", environments: [environment("dev", "DEVELOPMENT", "NEVER_DEPLOYED", [service("api", "NEVER_DEPLOYED")])] },
  { id: "empty", name: "empty", environments: [] },
];
const none: OverviewFilters = { q: "", project: null, mode: null, status: null };
const names = (result: OverviewProject[]) =>
  result.map((p) => `${p.name}:${p.environments.map((e) => `${e.name}(${e.services.map((s) => s.name).join(",")})`).join(" ")}`);

describe("overview filters", () => {
  it("show everything when none is set", () => {
    expect(applyFilters(projects, none)).toEqual(projects);
  });

  it("search project, environment and service names, listing only the matching services when only they match", () => {
    expect(names(applyFilters(projects, { ...none, q: "WORK" }))).toEqual(["shop:production(worker)"]);
    expect(names(applyFilters(projects, { ...none, q: "pr-" }))).toEqual(["shop:pr-7(web)"]);
    expect(names(applyFilters(projects, { ...none, q: "blog" }))).toEqual(["blog:dev(api)"]);
    expect(names(applyFilters(projects, { ...none, q: "emp" }))).toEqual(["empty:"]);
  });

  it("filter by project, mode, and status group, by the environment's status or any of its services'", () => {
    expect(names(applyFilters(projects, { ...none, project: "blog" }))).toEqual(["blog:dev(api)"]);
    expect(names(applyFilters(projects, { ...none, mode: "PREVIEW" }))).toEqual(["shop:pr-7(web)"]);
    expect(names(applyFilters(projects, { ...none, status: "failed" }))).toEqual(["shop:production(web,worker)"]);
    expect(names(applyFilters(projects, { ...none, status: "working" }))).toEqual(["shop:pr-7(web)"]);
    expect(names(applyFilters(projects, { ...none, status: "never" }))).toEqual(["blog:dev(api)"]);
    expect(applyFilters(projects, { ...none, project: "blog", status: "failed" })).toEqual([]);
  });

  it("round-trip through the URL's query, ignoring values it does not know", () => {
    const filters: OverviewFilters = { q: "web", project: "shop", mode: "PREVIEW", status: "failed" };
    expect(queryFromFilters(filters)).toBe("q=web&project=shop&mode=PREVIEW&status=failed");
    expect(filtersFromQuery(new URLSearchParams(queryFromFilters(filters)))).toEqual(filters);
    expect(filtersFromQuery(new URLSearchParams("mode=weird&status=everything&q=%20x%20"))).toEqual({ ...none, q: "x" });
    expect(queryFromFilters(none)).toBe("");
  });

  it("list the organization's previews, newest pull request first", () => {
    expect(previewEnvironments(projects).map(({ environment }) => environment.name)).toEqual(["pr-7"]);
  });
});
