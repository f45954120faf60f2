import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { testPort } from "../test/support/ports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GitServer, startGitServer } from "../test/git-server";
import { createFakeSsh, generateDeployKey } from "../test/support/fake-ssh";
import { repositoryCheckSettings } from "../test/support/seed";
import { startCliHarness, type CliHarness } from "./test-harness";

/** `slipway service create` against a control plane that checks repositories (issue 14), with real git servers on 127.0.0.1. */
let h: CliHarness;
let git: GitServer;
let dir: string;
let closedUrl: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-cli-check-"));
  const app = path.join(dir, "app");
  await fs.mkdir(app);
  await fs.writeFile(path.join(app, "index.html"), "hello\n");
  git = await startGitServer();
  await git.createRepo("legacy", app, {}, "master");
  await git.createRepo("trunk", app, {}, "trunk");
  closedUrl = `http://127.0.0.1:${await testPort()}/app.git`;
  const ssh = await createFakeSsh(dir);
  h = await startCliHarness({
    repositoryCheck: repositoryCheckSettings({
      enabled: true,
      timeoutMs: 5_000,
      sshKnownHostsFile: path.join(dir, "known_hosts"),
      env: { PATH: `${ssh.dir}:${process.env.PATH}`, HOME: dir },
    }),
  });
  expect(await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).toMatchObject({ code: 0, stderr: "" });
  expect((await h.cli(["project", "create", "shop"])).code).toBe(0);
  expect((await h.cli(["env", "create", "shop/dev"])).code).toBe(0);
});

afterAll(async () => {
  await git?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe("slipway service create", () => {
  it("without --branch follows the repository's default branch, checked and recorded", async () => {
    const created = await h.cli(["service", "create", "shop/dev/web", "--git", git.url("legacy")]);
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).toMatch(new RegExp(`^Created service shop/dev/web from ${git.url("legacy").replace(/\./g, "\\.")}#master \\(`));
  });

  it("refuses an unknown branch or an unreachable repository, and --no-check saves it anyway", async () => {
    const unknown = await h.cli(["service", "create", "shop/dev/api", "--git", git.url("trunk"), "--branch", "main"]);
    expect(unknown).toMatchObject({
      code: 1,
      stdout: "",
      stderr: `error: config.git.ref.branch: branch "main" not found in ${git.url("trunk")}; it has trunk\n`,
    });
    const unreachable = await h.cli(["service", "create", "shop/dev/api", "--git", closedUrl]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toBe(`error: config.git.url: repository ${closedUrl} is unreachable: could not connect to ${new URL(closedUrl).host}\n`);

    const later = await h.cli(["service", "create", "shop/dev/api", "--git", closedUrl, "--no-check"]);
    expect(later).toMatchObject({ code: 0, stderr: "" });
    expect(later.stdout).toMatch(new RegExp(`^Created service shop/dev/api from ${closedUrl.replace(/\./g, "\\.")} \\(default branch\\) \\(`));
  });

  it("takes a deploy key from a file or standard input, checks the ssh repository with it, and never prints it", async () => {
    const key = await generateDeployKey(dir, "deploy_key");
    const url = `ssh://git@fake-host${git.repoPath("trunk")}`;
    const fromFile = await h.cli(["service", "create", "shop/dev/worker", "--git", url, "--git-ssh-key-file", path.join(dir, "deploy_key"), "--json"]);
    expect(fromFile).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ config: { git: { url, ref: { branch: "trunk" }, credentials: { sshPrivateKey: "[secret]" } } } });
    const fromStdin = await h.cli(["service", "create", "shop/dev/jobs", "--git", url, "--git-ssh-key-file", "-"], { stdin: key });
    expect(fromStdin).toMatchObject({ code: 0, stderr: "" });
    for (const result of [fromFile, fromStdin]) expect(result.stdout).not.toContain(key.split("\n")[1]);

    const both = await h.cli(["service", "create", "shop/dev/x", "--git", url, "--git-ssh-key-file", "-", "--git-token-stdin"], { stdin: key });
    expect(both).toMatchObject({ code: 2, stderr: "error: give --git-token-stdin or --git-ssh-key-file, not both\n" });
  });
});
