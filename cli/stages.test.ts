import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../server/api/root";
import { deployments } from "../server/db/schema";
import { startCliHarness, type CliHarness, type EnginePlayer } from "./test-harness";

/**
 * Deployment stages (issue 16, part 2) from the CLI, through REST and the domain functions: shown,
 * added, moved, removed, services put in them, carried by a deployment's snapshot, copied by a
 * clone; and `slipway deployment <id>` saying which services are live on which release. The test
 * plays the engine, recording its events through the function the engine gateway calls.
 */
let h: CliHarness;
const ids: Record<string, string> = {};
const api = () => createCaller({ services: h.services, actor: h.org.as("DEVELOPER") });

beforeAll(async () => {
  h = await startCliHarness();
  await h.cli(["login", "--url", h.url, "--token", h.ownerToken]);
  await h.cli(["project", "create", "shop"]);
  const env = await h.cli(["env", "create", "shop/dev"]);
  ids.env = /\(\w+, ([0-9a-f-]{36})\)/.exec(env.stdout)![1]!;
  for (const name of ["api", "web", "admin"]) {
    const created = await h.cli(["service", "create", `shop/dev/${name}`, "--git", "https://github.com/acme/shop.git", "--json"]);
    ids[name] = (JSON.parse(created.stdout) as { id: string }).id;
  }
  const db = await h.cli(["service", "create", "shop/dev/db", "--database", "postgresql", "--json"]);
  ids.db = (JSON.parse(db.stdout) as { id: string }).id;
});

/** The test plays the engine (cli/test-harness.ts). */
const event: EnginePlayer["event"] = (...args) => h.engine.event(...args);
const engineEvents: EnginePlayer["record"] = (...args) => h.engine.record(...args);

/** `slipway env stages`' table as [stage, services] rows. */
async function stageRows(path = "shop/dev"): Promise<string[][]> {
  const shown = await h.cli(["env", "stages", path]);
  expect(shown).toMatchObject({ code: 0, stderr: "" });
  return shown.stdout
    .trim()
    .split("\n")
    .slice(1)
    .map((line) =>
      line
        .trim()
        .split(/\s{2,}/)
        .slice(1),
    );
}

describe("deployment stages from the CLI", () => {
  it("adds, moves and removes stages and puts services in them, each change audited", async () => {
    expect(await stageRows()).toEqual([["default", "db, admin, api, web"]]);

    expect((await h.cli(["stage", "add", "shop/dev", "backend"])).stdout).toBe(
      "Added stage backend to shop/dev at position 1 (put services in it: slipway stage assign shop/dev/<service> backend)\n",
    );
    expect((await h.cli(["stage", "add", "shop/dev", "frontends"])).code).toBe(0);
    expect((await h.cli(["stage", "add", "shop/dev", "extras"])).code).toBe(0);
    expect((await h.cli(["stage", "assign", "shop/dev/api", "backend"])).stdout).toBe("shop/dev/api is in stage backend: the next deployment applies it\n");
    await h.cli(["stage", "assign", "shop/dev/web", "frontends"]);
    await h.cli(["stage", "assign", "shop/dev/admin", "frontends"]);
    expect(await stageRows()).toEqual([
      ["default", "db"],
      ["backend", "api"],
      ["frontends", "admin, web"],
      ["extras", "-"],
    ]);

    expect((await h.cli(["stage", "move", "shop/dev", "extras", "--position", "1"])).stdout).toBe("Moved stage extras of shop/dev to position 1\n");
    expect((await stageRows()).map(([name]) => name)).toEqual(["default", "extras", "backend", "frontends"]);
    await h.cli(["stage", "assign", "shop/dev/admin", "extras"]);
    expect((await h.cli(["stage", "remove", "shop/dev", "extras"])).stdout).toBe("Removed stage extras of shop/dev; admin moved to the default stage\n");
    expect(await stageRows()).toEqual([
      ["default", "db, admin"],
      ["backend", "api"],
      ["frontends", "web"],
    ]);

    const audit = await createCaller({ services: h.services, actor: h.org.as("ADMIN") }).organization.audit({});
    const actions = audit.map((entry) => entry.action);
    for (const action of ["stage.add", "stage.move", "stage.remove", "service.stage"]) expect(actions).toContain(action);
    expect(audit.find((entry) => entry.action === "stage.move")?.changes).toMatchObject({ stage: "extras", position: { from: 3, to: 1 } });
  });

  it("refuses a stage named default, an unknown stage and a position that is not one, and changes nothing", async () => {
    const before = await stageRows();
    const named = await h.cli(["stage", "add", "shop/dev", "default"]);
    expect(named.code).toBe(2);
    expect(named.stderr).toContain('"default" is the stage of services placed in no other: pick another name');
    const unknown = await h.cli(["stage", "assign", "shop/dev/web", "nowhere"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toBe('error: The environment has no stage "nowhere" (its stages: "default", "backend", "frontends")\n');
    const moved = await h.cli(["stage", "move", "shop/dev", "default", "--position", "2"]);
    expect(moved.stderr).toContain('"default" is where services placed in no stage are');
    const zero = await h.cli(["stage", "move", "shop/dev", "backend", "--position", "0"]);
    expect(zero.code).toBe(2);
    const taken = await h.cli(["stage", "add", "shop/dev", "backend"]);
    expect(taken.stderr).toBe('error: Stage "backend" in environment "dev" already exists\n');
    expect(await stageRows()).toEqual(before);
    await expect(createCaller({ services: h.services, actor: h.org.as("VIEWER") }).stages.add({ environmentId: ids.env!, name: "late" })).rejects.toMatchObject(
      {
        code: "FORBIDDEN",
      },
    );
  });

  it("gives the engine the stages in order, reversed to stop, and says which services are live on which release", async () => {
    const first = await api().deployments.create({ environmentId: ids.env!, action: "DEPLOY" });
    const snapshot = await snapshotOf(first.deployment.id);
    expect(snapshot.stages).toEqual([
      { name: "default", serviceIds: [ids.db, ids.admin] },
      { name: "backend", serviceIds: [ids.api] },
      { name: "frontends", serviceIds: [ids.web] },
    ]);
    expect(snapshot.services.map((service) => service.id)).toEqual([ids.db, ids.admin, ids.api, ids.web]);
    const [V1, V2] = ["1".repeat(40), "2".repeat(40)];
    await engineEvents(first.deployment.id, [
      event(null, "deployment", "started"),
      ...[ids.db!, ids.admin!, ids.api!, ids.web!].flatMap((id) => [event(id, "clone", "succeeded", { commit: V1 }), event(id, "switch", "succeeded")]),
      event(null, "deployment", "succeeded"),
    ]);

    // The second one: admin fails to build beside db, so backend and frontends never start.
    const second = await api().deployments.create({ environmentId: ids.env!, action: "DEPLOY" });
    await engineEvents(second.deployment.id, [
      event(null, "deployment", "started"),
      event(ids.db!, "build", "started"),
      event(ids.admin!, "clone", "succeeded", { commit: V2 }),
      event(ids.admin!, "build", "failed", { message: "exit 1" }),
      event(ids.db!, "switch", "succeeded"),
      event(ids.api!, "clone", "skipped", { message: "not started: stage default failed (admin)" }),
      event(ids.web!, "clone", "skipped", { message: "not started: stage default failed (admin)" }),
      event(null, "deployment", "failed", { message: "1 of 4 services deployed, 2 not started; admin: build failed: exit 1" }),
    ]);
    const shown = await h.cli(["deployment", second.deployment.id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^SERVICE\s+STAGE\s+OUTCOME\s+LIVE RELEASE$/m);
    expect(shown.stdout).toMatch(/^db\s+default\s+live\s+this deployment$/m);
    expect(shown.stdout).toMatch(new RegExp(`^admin\\s+default\\s+failed\\s+deployment ${first.deployment.id} 1111111 \\(earlier\\)$`, "m"));
    expect(shown.stdout).toMatch(new RegExp(`^api\\s+backend\\s+skipped\\s+deployment ${first.deployment.id} 1111111 \\(earlier\\)$`, "m"));
    expect(shown.stdout).toMatch(/^web\s+frontends\s+skipped\s+deployment/m);
    const status = await api().deployments.get({ deploymentId: second.deployment.id });
    expect(status.status).toBe("BUILD_ERROR");

    const stop = await api().deployments.create({ environmentId: ids.env!, action: "STOP" });
    expect((await snapshotOf(stop.deployment.id)).stages?.map((stage) => stage.name)).toEqual(["frontends", "backend", "default"]);
  });

  it("copies the stages and each service's place in them to a clone", async () => {
    const cloned = await h.cli(["env", "clone", "shop/dev", "--name", "copy"]);
    expect(cloned.code).toBe(0);
    expect(await stageRows("shop/copy")).toEqual([
      ["default", "db, admin"],
      ["backend", "api"],
      ["frontends", "web"],
    ]);
    // A copy, not a share: changing the clone's stages leaves the source's alone.
    await h.cli(["stage", "remove", "shop/copy", "backend"]);
    expect((await stageRows()).map(([name]) => name)).toEqual(["default", "backend", "frontends"]);
  });
});

async function snapshotOf(deploymentId: string) {
  const [row] = await h.services.db.select().from(deployments).where(eq(deployments.id, deploymentId));
  return row!.snapshot;
}
