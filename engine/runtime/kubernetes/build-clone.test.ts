import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GitServer, startGitServer } from "../../../test/git-server";
import { buildJobManifest } from "./build";
import { application, release, scope } from "./testing/services";

const run = promisify(execFile);

let dir: string;
let server: GitServer;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-build-clone-"));
  server = await startGitServer();
});

afterAll(async () => {
  await server?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe("a cluster build's clone container", () => {
  it("checks out the commit without .git, so that a Dockerfile's `COPY . .` leaves the history out of the image", async () => {
    const app = path.join(dir, "app");
    await fs.mkdir(app);
    await fs.writeFile(path.join(app, "server.py"), "print('hello')\n");
    const commit = await server.createRepo("web", app);
    const job = buildJobManifest({
      namespace: "slipway-system",
      scope,
      service: application as never,
      release,
      repository: { commit, secret: "build-web", deployKey: false },
      dockerfile: { context: "", dockerfile: "Dockerfile", buildArgs: [] },
      destination: "registry.example.com/web:1",
      cache: "registry.example.com/web/cache",
      registrySecret: null,
      builder: "kaniko",
      timeoutSeconds: 60,
    });
    const clone = job.spec!.template.spec!.initContainers![0]!;
    // The container's own command, run by this host's sh and git in place of alpine/git's, into a workspace of the test's.
    const [shell, ...args] = clone.command!;
    const workspace = path.join(dir, "workspace", "src");
    await run(shell!, [...args.slice(0, -2), workspace, args.at(-1)!], { env: { ...process.env, HOME: dir, GIT_URL: server.url("web") } });
    expect(await fs.readdir(workspace)).toEqual(["server.py"]);
  });
});
