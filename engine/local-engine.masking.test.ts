import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { layout, serviceState } from "./runtime/local/layout";

/** Secret masking of runtime logs fails closed (issue 12): a line whose secrets are unknown is withheld, never shipped raw. */
describe("local engine: masking runtime logs", () => {
  const SECRET = "tok-5e6f7a8b9c";
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  const app = () =>
    service({
      id: "2c1d7e0a-5b3f-4a8e-9d6c-1f0e2d3c4b5a",
      name: "masked",
      variables: [{ key: "API_TOKEN", value: SECRET, secret: true }],
      config: { git: { url: git.url("app") } },
    });
  const runtimeTexts = () => env.lines.filter((line) => line.stream.kind === "service").map((line) => line.text);

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("app", fixture("node-app"));
    env = await engineHome();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("masks the app's output, and withholds lines while the release's launch file cannot be read", async () => {
    const engine = env.newEngine();
    await engine.start();
    const deploy = task("DEPLOY", [app()]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    const listening = await eventually(() => runtimeTexts().find((text) => text.includes("listening")), 10_000, "the app's first line");
    expect(listening).toContain("with token ****");
    await engine.shutdown();

    // While no engine runs, the launch file (the only copy of the secrets on the host) goes, and the app logs its secret.
    const paths = layout(env.home);
    const { current } = serviceState.parse(JSON.parse(await fs.readFile(paths.stateFile(app().id), "utf8")));
    const launchFile = paths.launchFile(app().id, current!.releaseId);
    const launch = await fs.readFile(launchFile, "utf8");
    await fs.rm(launchFile);
    const logFile = path.join(paths.releaseDir(app().id, current!.releaseId), "runtime.log");
    await fs.appendFile(logFile, `first leak attempt ${SECRET}\n`);

    const next = env.newEngine();
    await next.start();
    const withheld = await eventually(() => runtimeTexts().find((text) => text.includes("withheld")), 10_000, "the withheld line");
    expect(withheld).toMatch(/launch file is unreadable \(ENOENT\)/);

    // Once the secrets can be read again, lines are masked again.
    await fs.writeFile(launchFile, launch, { mode: 0o600 });
    await fs.appendFile(logFile, `second leak attempt ${SECRET}\n`);
    await eventually(() => runtimeTexts().includes("second leak attempt ****"), 10_000, "the masked line");
    expect(runtimeTexts().join("\n")).not.toContain(SECRET);
  });

  it("clones a private repository with its credentials and masks them in the build log", async () => {
    const TOKEN = "glpat-m4sk3d-in-build-logs";
    const privateGit = await startGitServer({ basicAuth: { username: "deploy", password: TOKEN } });
    try {
      await privateGit.createRepo("private", fixture("node-app"));
      const engine = env.newEngine();
      await engine.start();
      const spec = service({
        id: "6a0e4f1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        name: "private",
        // A build that prints the token (a misbehaving script): the engine masks it as it does secret variables.
        config: { git: { url: privateGit.url("private"), credentials: { username: "deploy", password: TOKEN } }, buildCommand: `echo "built with ${TOKEN}"` },
      });
      const deploy = task("DEPLOY", [spec]);
      await engine.execute(deploy);
      expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
      const buildLog = env.lines
        .filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deploy.deploymentId)
        .map((line) => line.text);
      expect(buildLog).toContain(`Cloning ${privateGit.url("private")} at its default branch`);
      expect(buildLog).toContain("built with ****");
      expect(JSON.stringify(env.lines)).not.toContain(TOKEN);
      await engine.shutdown();
    } finally {
      await privateGit.close();
    }
  });
});
