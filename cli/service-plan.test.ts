import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { repositoryCheckSettings } from "../test/support/seed";
import { startCliHarness, type CliHarness } from "./test-harness";

/** `slipway service plan` against the real control plane, reading real repositories served on 127.0.0.1 (issue 14, item 2). */
let h: CliHarness;
let git: GitServer;
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-cli-plan-"));
  git = await startGitServer();
  await git.createRepo("spa", fixture("vite-spa"));
  // A pnpm monorepo: the app in apps/web, the lockfile and workspace file at the root.
  await git.createRepo("mono", fixture("vite-spa"), {
    "package.json": JSON.stringify({ private: true }),
    "pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
    "pnpm-workspace.yaml": "packages:\n  - apps/*\n",
    "apps/web/package.json": JSON.stringify({ name: "@acme/web", scripts: { build: "next build", start: "next start" }, dependencies: { next: "16.0.0" } }),
  });
  const devOnly = path.join(dir, "dev-only");
  await fs.mkdir(devOnly);
  await git.createRepo("dev-only", devOnly, { "package.json": JSON.stringify({ scripts: { start: "webpack serve" }, dependencies: { webpack: "^5" } }) });
  h = await startCliHarness({
    repositoryCheck: repositoryCheckSettings({ enabled: true, timeoutMs: 10_000, env: { PATH: process.env.PATH ?? "", HOME: dir } }),
  });
  expect(await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).toMatchObject({ code: 0, stderr: "" });
  expect((await h.cli(["project", "create", "shop"])).code).toBe(0);
  expect((await h.cli(["env", "create", "shop/dev"])).code).toBe(0);
});

afterAll(async () => {
  await git?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe("slipway service plan", () => {
  it("shows what is detected in the branch, why, its steps and how it is served, before any deployment", async () => {
    expect((await h.cli(["service", "create", "shop/dev/spa", "--git", git.url("spa")])).code).toBe(0);
    const result = await h.cli(["service", "plan", "shop/dev/spa"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toMatch(/^detected +Vite SPA$/m);
    expect(result.stdout).toMatch(/^because +vite\.config\.js configures Vite$/m);
    expect(result.stdout).toMatch(/^ +react routes on the client$/m);
    expect(result.stdout).toMatch(/^steps +npm install --include=dev --no-audit --no-fund\n +npm run build$/m);
    expect(result.stdout).toMatch(/^start +serve dist\/ with the static server, SPA fallback to index\.html$/m);
  });

  it("follows the service's output directory, and prints the API object with --json", async () => {
    const created = await h.cli(["service", "create", "shop/dev/spa-out", "--git", git.url("spa"), "--output-directory", "prebuilt"]);
    expect(created.code).toBe(0);
    const plan = JSON.parse((await h.cli(["service", "plan", "shop/dev/spa-out", "--json"])).stdout) as Record<string, unknown>;
    expect(plan).toMatchObject({ status: "detected", framework: "Vite SPA", start: { type: "static", directory: "prebuilt", spa: true } });
    expect(plan.commit).toMatch(/^[0-9a-f]{40}$/);
  });

  it("follows the service's install command, Node version and output directory, set with service update", async () => {
    expect((await h.cli(["service", "create", "shop/dev/spa-set", "--git", git.url("spa")])).code).toBe(0);
    expect((await h.cli(["service", "plan", "shop/dev/spa-set"])).stdout).toMatch(/^node +the engine's default$/m);
    const update = ["service", "update", "shop/dev/spa-set", "--install-command", "npm ci", "--node-version", ">=20 <23", "--output-directory", "prebuilt"];
    expect((await h.cli([...update, "--python-version", "3.12"])).code).toBe(0);
    const result = await h.cli(["service", "plan", "shop/dev/spa-set"]);
    expect(result.stdout).toMatch(/^node +>=20 <23 \(from the service's nodeVersion\)$/m);
    expect(result.stdout).toMatch(/^steps +npm ci\n +npm run build$/m);
    expect(result.stdout).toMatch(/^start +serve prebuilt\/ with the static server/m);
    const listed = JSON.parse((await h.cli(["service", "list", "shop/dev", "--json"])).stdout) as { name: string; config: Record<string, unknown> }[];
    expect(listed.find((service) => service.name === "spa-set")?.config).toMatchObject({
      installCommand: "npm ci",
      nodeVersion: ">=20 <23",
      pythonVersion: "3.12",
      outputDirectory: "prebuilt",
    });
  });

  it("installs a workspace app at the repository root", async () => {
    expect((await h.cli(["service", "create", "shop/dev/web", "--git", git.url("mono"), "--root", "apps/web"])).code).toBe(0);
    const result = await h.cli(["service", "plan", "shop/dev/web"]);
    expect(result.stdout).toMatch(/^detected +Next\.js$/m);
    expect(result.stdout).toContain("apps/web is a pnpm workspace package (pnpm-workspace.yaml)");
    expect(result.stdout).toMatch(/^steps +pnpm install --frozen-lockfile --prod=false \(in \.\.\/\.\.: the repository root\)$/m);
    expect(result.stdout).toMatch(/pnpm --filter \.\/apps\/web run build \(in \.\.\/\.\.: the repository root\)$/m);
    expect(result.stdout).toMatch(/^start +next start$/m);
  });

  it("says why the repository could not be read", async () => {
    const gone = "http://127.0.0.1:2/gone.git";
    expect((await h.cli(["service", "create", "shop/dev/gone", "--git", gone, "--branch", "main", "--no-check"])).code).toBe(0);
    const result = await h.cli(["service", "plan", "shop/dev/gone"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      "could not read the plan of shop/dev/gone: could not fetch http://127.0.0.1:2/gone.git at refs/heads/main: could not connect to 127.0.0.1:2",
    );
  });

  it("says why nothing can be built, and fails", async () => {
    expect((await h.cli(["service", "create", "shop/dev/dev-only", "--git", git.url("dev-only")])).code).toBe(0);
    const result = await h.cli(["service", "plan", "shop/dev/dev-only"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/the start script "webpack serve" runs a development server.*set a start command, or the output directory/);
  });
});
