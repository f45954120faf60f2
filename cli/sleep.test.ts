import { beforeAll, describe, expect, it } from "vitest";
import { startCliHarness, type CliHarness } from "./test-harness";

/** `slipway service update --sleep-after` (issue 16, part 3) against the real control plane. */
let h: CliHarness;

beforeAll(async () => {
  h = await startCliHarness();
  expect(await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).toMatchObject({ code: 0, stderr: "" });
  expect((await h.cli(["project", "create", "shop"])).code).toBe(0);
  expect((await h.cli(["env", "create", "shop/dev"])).code).toBe(0);
});

const configOf = async (name: string) => {
  const listed = JSON.parse((await h.cli(["service", "list", "shop/dev", "--json"])).stdout) as { name: string; config: Record<string, unknown> }[];
  return listed.find((service) => service.name === name)?.config;
};

describe("slipway service update --sleep-after", () => {
  it("sets the minutes, never, and back to the environment's default", async () => {
    expect((await h.cli(["service", "create", "shop/dev/web", "--git", "https://example.test/web.git"])).code).toBe(0);
    expect((await h.cli(["service", "update", "shop/dev/web", "--sleep-after", "15"])).code).toBe(0);
    expect(await configOf("web")).toMatchObject({ sleepAfterMinutes: 15 });
    expect((await h.cli(["service", "update", "shop/dev/web", "--sleep-after", "never"])).code).toBe(0);
    expect(await configOf("web")).toMatchObject({ sleepAfterMinutes: 0 });
    expect((await h.cli(["service", "update", "shop/dev/web", "--unset", "sleep-after"])).code).toBe(0);
    expect(await configOf("web")).not.toHaveProperty("sleepAfterMinutes");
    const bad = await h.cli(["service", "update", "shop/dev/web", "--sleep-after", "soon"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("expected whole minutes from 1 to 43200, or never");
  });

  it("sets it on a container as on an application", async () => {
    expect((await h.cli(["service", "create", "shop/dev/box", "--image", "nginx:1.27"])).code).toBe(0);
    expect((await h.cli(["service", "update", "shop/dev/box", "--sleep-after", "5"])).code).toBe(0);
    expect(await configOf("box")).toMatchObject({ image: { name: "nginx", tag: "1.27" }, sleepAfterMinutes: 5 });
    expect((await h.cli(["service", "update", "shop/dev/box", "--unset", "sleep-after"])).code).toBe(0);
    expect(await configOf("box")).not.toHaveProperty("sleepAfterMinutes");
  });

  it("refuses it on a job and a database, saying why", async () => {
    const job = ["service", "create", "shop/dev/seed", "--git", "https://example.test/jobs.git", "--job", "sh seed.sh", "--on", "start"];
    expect((await h.cli(job)).code).toBe(0);
    const onJob = await h.cli(["service", "update", "shop/dev/seed", "--sleep-after", "5"]);
    expect(onJob.code).toBe(2);
    expect(onJob.stderr).toContain("--sleep-after is for applications and containers: a job runs on its triggers, not on requests");
    expect((await h.cli(["service", "create", "shop/dev/db", "--database", "postgresql"])).code).toBe(0);
    const onDatabase = await h.cli(["service", "update", "shop/dev/db", "--sleep-after", "5"]);
    expect(onDatabase.code).toBe(2);
    expect(onDatabase.stderr).toContain("a database must answer its applications at any time");
  });

  it("sets and shows the environment's default with slipway env sleep", async () => {
    const set = await h.cli(["env", "sleep", "shop/dev", "--after", "30"]);
    expect(set).toMatchObject({
      code: 0,
      stdout: "shop/dev: its applications and containers sleep after 30 min without a request unless they say otherwise\n",
    });
    expect(JSON.parse((await h.cli(["env", "sleep", "shop/dev", "--json"])).stdout)).toEqual({ sleepAfterMinutes: 30 });
    expect((await h.cli(["env", "sleep", "shop/dev", "--after", "never"])).stdout).toContain("its applications and containers never sleep");
    expect(JSON.parse((await h.cli(["env", "sleep", "shop/dev", "--json"])).stdout)).toEqual({ sleepAfterMinutes: null });
  });
});
