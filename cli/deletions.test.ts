import { beforeAll, describe, expect, it } from "vitest";
import { startCliHarness, type CliHarness, type CliResult, type EnginePlayer } from "./test-harness";

/**
 * `service delete`, `env delete` and `project delete` ask as the dashboard does: the name typed
 * at a terminal, or `--yes`; a script without either is stopped before anything is deleted.
 */
let h: CliHarness;

beforeAll(async () => {
  h = await startCliHarness();
  await h.cli(["login", "--url", h.url, "--token", h.ownerToken]);
  await h.cli(["project", "create", "shop"]);
  for (const env of ["dev", "qa", "tmp"]) {
    await h.cli(["env", "create", `shop/${env}`]);
    await h.cli(["service", "create", `shop/${env}/web`, "--git", "https://example.test/shop.git"]);
  }
});

const event: EnginePlayer["event"] = (...args) => h.engine.event(...args);

function expectRefused(result: CliResult, message: string | RegExp) {
  expect(result.code).toBe(2);
  expect(result.stdout).toBe("");
  expect(result.stderr.trim().split("\n").at(-1)).toMatch(message);
}

const serviceNames = async (env: string) => (JSON.parse((await h.cli(["service", "list", env, "--json"])).stdout) as { name: string }[]).map((s) => s.name);
const environmentNames = async () => (JSON.parse((await h.cli(["env", "list", "shop", "--json"])).stdout) as { name: string }[]).map((e) => e.name);

describe("deleting without a terminal", () => {
  it("refuses service, environment and project deletes without --yes, with exit 2, and deletes nothing", async () => {
    expectRefused(
      await h.cli(["service", "delete", "shop/dev/web"]),
      "error: deleting service shop/dev/web needs confirmation: pass --yes (no terminal to type its name in): nothing was deleted",
    );
    // Piped input is not a terminal: nobody typed it in answer to a question.
    expectRefused(await h.cli(["env", "delete", "shop/dev"], { stdin: "dev\n" }), /^error: deleting environment shop\/dev needs confirmation: pass --yes/);
    await h.cli(["project", "create", "scratch"]);
    expectRefused(await h.cli(["project", "delete", "scratch"]), /^error: deleting project scratch needs confirmation: pass --yes/);
    expect(await serviceNames("shop/dev")).toEqual(["web"]);
    expect(await environmentNames()).toContain("dev");
    expect((await h.cli(["project", "delete", "scratch", "--yes"])).stdout).toBe("Deleted project scratch\n");
  });

  it("deletes with --yes", async () => {
    const deleted = await h.cli(["service", "delete", "shop/qa/web", "--yes"]);
    expect(deleted).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Deployment [0-9a-f-]{36} DELETE shop\/qa\/web: QUEUED\n$/) });
  });
});

describe("deleting at a terminal", () => {
  it("asks for the name and deletes nothing when another is typed", async () => {
    const wrong = await h.cli(["service", "delete", "shop/dev/web"], { stdin: "dev\n", terminal: true });
    expect(wrong.stderr).toContain(
      "This deletes service shop/dev/web: a DELETE deployment stops it, then removes it with its data and variables. Type its name (web) to confirm:",
    );
    expectRefused(wrong, 'error: you typed "dev", not "web": nothing was deleted');
    expectRefused(
      await h.cli(["env", "delete", "shop/dev"], { stdin: "shop/dev\n", terminal: true }),
      'error: you typed "shop/dev", not "dev": nothing was deleted',
    );
    expect(await serviceNames("shop/dev")).toEqual(["web"]);
  });

  it("deletes once the name is typed, and says the environment is what goes", async () => {
    const deleted = await h.cli(["env", "delete", "shop/dev"], { stdin: "dev\n", terminal: true });
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(
      /^Deleting environment shop\/dev: deployment [0-9a-f-]{36} removes what runs, then the environment and its deployments\nslipway env list shop no longer lists it once it is gone/,
    );
  });
});

describe("env delete --watch", () => {
  it("ends by saying the environment is gone when its deletion takes the deployment with it", async () => {
    const running = h.start(["env", "delete", "shop/tmp", "--yes", "--watch"]);
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) DELETE shop\/tmp$/m);
    await h.engine.record(id!, [event(null, "deployment", "started"), event(null, "deployment", "succeeded")]);
    const result = await running.done;
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout.trim().split("\n").at(-1)).toBe("DELETED: environment shop/tmp is gone, with its deployments");
    expect(await environmentNames()).not.toContain("tmp");
  });
});
