import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { testPort } from "../test/support/ports";
import { afterAll, expect, it } from "vitest";
import { createInstantRuntime } from "../bench/fleet/instant-runtime";
import { recordingReporter, service, task } from "../test/engine-harness";
import { removeEngineHome } from "../test/process-cleanup";
import { urlCredentials } from "./config";
import { createEngine } from "./core";

/**
 * What a build prints reaches the control plane masked: secret variables, the repository's
 * credentials, and the secrets of the engine's own configuration (a pip index URL's token, which
 * pip itself prints in some of its messages). The runtime is the fleet bench's instant one, whose
 * build prints what a real one would: the orchestration around it is the real engine's.
 */
const homes: string[] = [];
afterAll(async () => {
  for (const home of homes) await removeEngineHome(home);
});

it("masks the engine's configuration secrets, secret variables and git credentials in build output", async () => {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-masking-"));
  homes.push(home);
  const recording = recordingReporter();
  const indexUrl = "https://ci:idx-9c41e7@pypi.example.internal/simple/";
  const printed = [
    `Looking in indexes: ${indexUrl}`,
    "API_KEY is sk-live-51f0c2",
    "fatal: could not read from https://deploy:ghp_2b7d93@git.example.internal/shop.git",
  ];
  const engine = createEngine({
    home,
    routerPort: await testPort(),
    router: false,
    reporter: recording.reporter,
    configSecrets: urlCredentials([indexUrl]),
    runtime: () => ({
      ...createInstantRuntime(),
      build: async (ctx) => {
        for (const line of printed) ctx.output("stdout", line);
      },
    }),
  });
  await engine.start();
  const app = service({
    variables: [{ key: "API_KEY", value: "sk-live-51f0c2", secret: true }],
    config: { git: { url: "https://git.example.internal/shop.git", credentials: { username: "deploy", password: "ghp_2b7d93" } } },
  });
  const deploy = task("DEPLOY", [app]);
  await engine.execute(deploy);
  await engine.shutdown();

  expect(recording.final(deploy.deploymentId)?.status).toBe("succeeded");
  const build = recording.lines.filter((line) => line.stream.kind === "deployment").map((line) => line.text);
  expect(build).toEqual(
    expect.arrayContaining([
      "Looking in indexes: https://ci:****@pypi.example.internal/simple/",
      "API_KEY is ****",
      "fatal: could not read from https://deploy:****@git.example.internal/shop.git",
    ]),
  );
  for (const secret of ["idx-9c41e7", "sk-live-51f0c2", "ghp_2b7d93"]) expect(build.join("\n")).not.toContain(secret);
});
