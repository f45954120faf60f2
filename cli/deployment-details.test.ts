import { beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../server/api/root";
import { startCliHarness, type CliHarness, type EnginePlayer } from "./test-harness";

/**
 * `slipway deployment <id>`: the test plays the engine (events recorded through the same domain
 * function the engine gateway calls) and the CLI prints what the deployment page shows.
 */
let h: CliHarness;
let web: string;
const [V1, V2] = ["1".repeat(40), "2".repeat(40)];
const SECRETS = ["sk-cli-before-55aa", "sk-cli-after-66bb"];

beforeAll(async () => {
  h = await startCliHarness();
  await h.cli(["login", "--url", h.url, "--token", h.ownerToken]);
  await h.cli(["project", "create", "shop"]);
  await h.cli(["env", "create", "shop/dev"]);
  const created = await h.cli(["service", "create", "shop/dev/web", "--git", "https://github.com/acme/shop.git", "--json"]);
  web = (JSON.parse(created.stdout) as { id: string }).id;
});

async function deploy(): Promise<string> {
  const deployed = await h.cli(["deploy", "shop/dev", "--json"]);
  return (JSON.parse(deployed.stdout) as { deployment: { id: string } }).deployment.id;
}

/** The test plays the engine (cli/test-harness.ts). */
const event: EnginePlayer["event"] = (...args) => h.engine.event(...args);
const engineEvents: EnginePlayer["record"] = (...args) => h.engine.record(...args);

describe("slipway deployment <id>", () => {
  it("prints who started it, each step's duration and what changed since the last success, keys only", async () => {
    await h.cli(["var", "set", "shop/dev/web", "GREETING=hello"]);
    await h.cli(["var", "set", "shop/dev/web", `API_KEY=${SECRETS[0]}`, "--secret"]);
    const first = await deploy();
    await engineEvents(first, [
      event(null, "deployment", "started"),
      event(web, "clone", "succeeded", { durationMs: 1200, commit: V1 }),
      event(null, "deployment", "succeeded"),
    ]);

    await h.cli(["var", "set", "shop/dev/web", "GREETING=bonjour", "NEW_FLAG=on"]);
    await h.cli(["var", "set", "shop/dev/web", `API_KEY=${SECRETS[1]}`, "--secret"]);
    await createCaller({ services: h.services, actor: h.org.as("DEVELOPER") }).services.update({ serviceId: web, config: { startCommand: "node main.js" } });
    const second = await deploy();
    await engineEvents(second, [
      event(null, "deployment", "started"),
      event(web, "clone", "succeeded", { durationMs: 800, commit: V2 }),
      event(web, "build", "succeeded", { durationMs: 12_400 }),
      event(null, "deployment", "succeeded"),
    ]);

    const shown = await h.cli(["deployment", second]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^triggered by\s+token:test-OWNER \(CLI\)$/m);
    expect(shown.stdout).toMatch(/^web\s+clone\s+succeeded\s+800ms$/m);
    expect(shown.stdout).toMatch(/^web\s+build\s+succeeded\s+12\.4s$/m);
    expect(shown.stdout).toContain(`web (since deployment ${first})`);
    expect(shown.stdout).toContain(`  commit     1111111..2222222  https://github.com/acme/shop/compare/${V1}...${V2}`);
    expect(shown.stdout).toContain("  config     startCommand: - -> node main.js");
    expect(shown.stdout).toContain("  variable   API_KEY changed (secret)");
    expect(shown.stdout).toContain("  variable   GREETING changed");
    expect(shown.stdout).toContain("  variable   NEW_FLAG added");
    for (const value of [...SECRETS, "hello", "bonjour"]) expect(shown.stdout).not.toContain(value);

    const json = JSON.parse((await h.cli(["deployment", second, "--json"])).stdout) as { changes: { previousDeploymentId: string }[] };
    expect(json.changes[0]!.previousDeploymentId).toBe(first);
  });

  it("leads a failed deployment with its failing step and its last lines", async () => {
    const failed = await deploy();
    const message = "build command \"npm run build\" exited with code 1; its last lines:\n> build\nError: cannot find module './missing'";
    await engineEvents(failed, [
      event(null, "deployment", "started"),
      event(web, "clone", "succeeded", { durationMs: 500, commit: V2 }),
      event(web, "build", "failed", { durationMs: 2100, message }),
      event(null, "deployment", "failed", { message: `web: build failed: ${message}` }),
    ]);
    const shown = await h.cli(["deployment", failed]);
    expect(shown.stdout).toContain(
      ["Failed: web build", '  build command "npm run build" exited with code 1', "  | > build", "  | Error: cannot find module './missing'"].join("\n"),
    );
    expect(shown.stdout).toMatch(/^web\s+build\s+failed\s+2\.1s$/m);
  });

  it("names every service that failed, with its reason and last lines, and how many went live, in the dashboard's words", async () => {
    await h.cli(["env", "create", "shop/stage"]);
    const ids: Record<string, string> = {};
    for (const name of ["flask", "upload", "vite"]) {
      const created = await h.cli(["service", "create", `shop/stage/${name}`, "--git", "https://github.com/acme/shop.git", "--json"]);
      ids[name] = (JSON.parse(created.stdout) as { id: string }).id;
    }
    const deployed = await h.cli(["deploy", "shop/stage", "--json"]);
    const failed = (JSON.parse(deployed.stdout) as { deployment: { id: string } }).deployment.id;
    const pip = "build command `pip install -r requirements.txt` failed (exit 1); its last lines:\nERROR: No matching distribution found for flask";
    await engineEvents(failed, [
      event(null, "deployment", "started"),
      event(ids.flask!, "build", "failed", { durationMs: 900, message: pip }),
      event(ids.vite!, "switch", "succeeded", { durationMs: 100 }),
      event(ids.upload!, "build", "failed", { durationMs: 800, message: pip.replace("flask", "werkzeug") }),
      event(null, "deployment", "failed", { message: "1 of 3 services deployed (upload failed too); flask: build failed" }),
    ]);
    const shown = await h.cli(["deployment", failed]);
    expect(shown.stdout).toContain(
      [
        "2 of 3 services failed: flask, upload; 1 is live",
        "Failed: flask build",
        "  build command `pip install -r requirements.txt` failed (exit 1)",
        "  | ERROR: No matching distribution found for flask",
        "Failed: upload build",
        "  build command `pip install -r requirements.txt` failed (exit 1)",
        "  | ERROR: No matching distribution found for werkzeug",
      ].join("\n"),
    );
  });

  it("says what it expects instead of a deployment id", async () => {
    const wrong = await h.cli(["deployment", "shop/dev"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toBe('error: "shop/dev" is not a deployment id (slipway deployments <project/env> lists them)\n');
  });
});
