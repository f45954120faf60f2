import { beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../server/api/root";
import { startCliHarness, type CliHarness, type EnginePlayer } from "./test-harness";

/**
 * `slipway audit` over `GET /audit` (h4 F11): deployments named by the services they acted on,
 * deleted ones included, filters by action and time, and bad input refused before any request;
 * and (h4 F5) `slipway deployment <id>` of an environment deleted since says what happened to it.
 * The test plays the engine, recording its events through the function the engine gateway calls.
 */
let h: CliHarness;
const ids: Record<string, string> = {};

const event: EnginePlayer["event"] = (...args) => h.engine.event(...args);
const DEPLOYMENT_LINE = /^Deployment ([0-9a-f-]{36}) /;

/** Plays a deployment's engine to a successful end (a DELETE's end removes what it deleted); returns its id. */
async function finish(id: string, step: "start" | "delete" = "start"): Promise<string> {
  await h.engine.record(id, [event(null, "deployment", "started"), event(null, step, "succeeded"), event(null, "deployment", "succeeded")]);
  return id;
}

/** Runs a deploy command and plays its engine to a successful end; returns the deployment's id. */
async function deployed(args: string[]): Promise<string> {
  const requested = await h.cli(args);
  expect(requested).toMatchObject({ code: 0, stderr: "" });
  return finish(DEPLOYMENT_LINE.exec(requested.stdout)![1]!);
}

/** Deletes are asked for through the API (the CLI's delete commands are not what this tests), and played to their end. */
const owner = () => createCaller({ services: h.services, actor: h.org.as("OWNER") });

/** The audit table's rows as their cells (columns are two or more spaces apart). */
function rows(stdout: string): string[][] {
  return stdout
    .trim()
    .split("\n")
    .map((line) => line.split(/\s{2,}/));
}

beforeAll(async () => {
  h = await startCliHarness();
  await h.cli(["login", "--url", h.url, "--token", h.ownerToken]);
  await h.cli(["project", "create", "demo"]);
  ids.dev = /\(\w+, ([0-9a-f-]{36})\)/.exec((await h.cli(["env", "create", "demo/dev"])).stdout)![1]!;
  for (const name of ["html", "vite"]) {
    const created = await h.cli(["service", "create", `demo/dev/${name}`, "--git", "https://example.test/demo.git", "--no-check", "--json"]);
    ids[name] = (JSON.parse(created.stdout) as { id: string }).id;
  }
});

describe("slipway audit", () => {
  it("names the services a deployment acted on, a deleted one too, newest first", async () => {
    ids.deploy = await deployed(["deploy", "demo/dev/vite"]);
    const deletion = await owner().deployments.create({ environmentId: ids.dev!, action: "DELETE", serviceIds: [ids.html!] });
    ids.delete = await finish(deletion.deployment.id, "delete");
    // The DELETE deployment's end removed the service: its row is gone, its name is not.
    expect((await h.cli(["service", "list", "demo/dev"])).stdout).not.toMatch(/html/);

    const audit = await h.cli(["audit"]);
    expect(audit).toMatchObject({ code: 0, stderr: "" });
    const [header, deleteRow, deployRow] = rows(audit.stdout);
    expect(header).toEqual(["WHEN", "ACTOR", "ACTION", "TARGET", "ORIGIN"]);
    expect(deleteRow).toEqual([
      expect.stringMatching(/s ago$/),
      expect.any(String),
      "deployment.delete",
      `html in demo/dev (deployment ${ids.delete.slice(0, 8)})`,
      "API",
    ]);
    expect(deployRow).toEqual([expect.any(String), expect.any(String), "deployment.deploy", `vite in demo/dev (deployment ${ids.deploy.slice(0, 8)})`, "CLI"]);
  });

  it("filters by action and time, cuts at --limit saying so, and prints the API objects with --json", async () => {
    const creates = await h.cli(["audit", "--action", "service.create", "--json"]);
    const events = JSON.parse(creates.stdout) as { action: string; target: { label: string }; services: unknown }[];
    expect(events.map((e) => [e.action, e.target.label])).toEqual([
      ["service.create", "demo/dev/vite"],
      ["service.create", "html"],
    ]);
    const deploy = JSON.parse((await h.cli(["audit", "--action", "deployment.deploy", "--json"])).stdout) as { services: { label: string }[] }[];
    expect(deploy[0]!.services.map((s) => s.label)).toEqual(["demo/dev/vite"]);

    const limited = await h.cli(["audit", "--limit", "2"]);
    expect(rows(limited.stdout)).toHaveLength(3);
    expect(limited.stderr).toBe("Showing the newest 2 events; older ones match too (--limit, --since).\n");

    expect((await h.cli(["audit", "--since", "1h", "--action", "project.create"])).stdout).toMatch(/project\.create +demo +CLI\n$/);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(await h.cli(["audit", "--since", future])).toMatchObject({ code: 0, stdout: "No event matches these filters.\n" });
  });

  it("refuses bad input with a usage error, and a role below ADMIN with the API's answer", async () => {
    expect(await h.cli(["audit", "--since", "yesterday"])).toMatchObject({
      code: 2,
      stdout: "",
      stderr: 'error: --since "yesterday": expected a duration like 10m, 2h, 1d or an ISO time\n',
    });
    expect(await h.cli(["audit", "--action", "deploy"])).toMatchObject({
      code: 2,
      stderr: 'error: --action "deploy": expected an action as the audit log names them, like deployment.deploy or service.update\n',
    });
    expect(await h.cli(["audit", "--limit", "0"])).toMatchObject({ code: 2, stderr: 'error: --limit "0": expected a number of events from 1 to 10000\n' });
    const developer = await h.org.apiToken("DEVELOPER");
    const refused = await h.cli(["audit"], { env: { SLIPWAY_TOKEN: developer } });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^error: .*ADMIN/);
  });
});

describe("a deleted environment's deployments (h4 F5)", () => {
  it("say they went with the environment, and which deployment deleted it", async () => {
    const environmentId = /\(\w+, ([0-9a-f-]{36})\)/.exec((await h.cli(["env", "create", "demo/tmp"])).stdout)![1]!;
    await h.cli(["service", "create", "demo/tmp/web", "--git", "https://example.test/demo.git", "--no-check"]);
    const earlier = await deployed(["deploy", "demo/tmp"]);
    const deletion = await finish((await owner().environments.delete({ environmentId })).id, "delete");
    expect((await h.cli(["env", "list", "demo"])).stdout).not.toMatch(/tmp/);

    const own = await h.cli(["deployment", deletion]);
    expect(own).toMatchObject({ code: 3, stdout: "" });
    expect(own.stderr).toMatch(
      new RegExp(
        `^error: Deployment ${deletion} deleted environment demo/tmp \\(requested \\S+Z by \\S+\\): it is done, and the environment's deployments went with it\\n$`,
      ),
    );
    const older = await h.cli(["deployment", earlier]);
    expect(older).toMatchObject({ code: 3 });
    expect(older.stderr).toMatch(
      new RegExp(`^error: Deployment ${earlier} was removed with environment demo/tmp, deleted since \\(requested \\S+Z by \\S+\\)\\n$`),
    );
    // An id the log never saw stays a plain 404.
    expect(await h.cli(["deployment", "00000000-0000-4000-8000-000000000000"])).toMatchObject({ code: 3, stderr: "error: Deployment not found\n" });
  });
});
