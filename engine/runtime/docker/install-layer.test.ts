import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { servicePlan } from "../service-plan";
import { applicationServiceSpec } from "../../protocol";
import { installLayer, requirementsReadFiles } from "./install-layer";
import { planDockerfile } from "./plan-image";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** A checkout with `files`, the plan the runtimes decide for it, and its install layer. */
async function layerOf(files: Record<string, string>, config: Record<string, unknown> = {}) {
  return (await planOf(files, config)).layer;
}

async function planOf(files: Record<string, string>, config: Record<string, unknown> = {}) {
  const checkout = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-install-layer-")));
  dirs.push(checkout);
  for (const [name, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(checkout, name)), { recursive: true });
    await fs.writeFile(path.join(checkout, name), text);
  }
  const service = applicationServiceSpec.parse({
    id: "7f1f1ad4-3f55-4c2b-9d8e-2a8e0c0b8a11",
    name: "app",
    kind: "APPLICATION",
    config: { git: { url: "http://127.0.0.1/app.git" }, ...config },
    variables: [],
    domains: [],
  });
  const plan = await servicePlan(checkout, checkout, service);
  return { plan, layer: await installLayer(plan, checkout, checkout, service.config.installCommand !== undefined) };
}

/** The Dockerfile's COPY and RUN lines, shortened to what they copy and the step they run (`args`: with the commit's ARG lines). */
async function dockerfileOf(files: Record<string, string>, args = false) {
  const { plan, layer } = await planOf(files);
  const text = planDockerfile({
    plan,
    appPath: "",
    baseImage: "debian",
    node: null,
    manager: null,
    env: {},
    buildArgNames: [],
    installFiles: layer.files,
    cacheMount: null,
  });
  return text
    .split("\n")
    .filter((line) => (/^(COPY|RUN)/.test(line) && !line.startsWith("COPY slipway")) || (args && /^ARG (SLIPWAY_GIT_COMMIT|SOURCE_VERSION)$/.test(line)))
    .map((line) => (line.startsWith("RUN") ? `RUN ${(JSON.parse(line.slice(line.indexOf("["))) as string[]).slice(5).join(" ")}` : line));
}

const server = { "server.js": "require('http').createServer().listen(process.env.PORT)" };

describe("the files an image's install reads before the rest of the source", () => {
  it("are package.json and the package manager's lockfile and settings the app has", async () => {
    const pkg = JSON.stringify({ scripts: { start: "node server.js" }, dependencies: { ms: "^2.1.3" } });
    expect((await layerOf({ ...server, "package.json": pkg, "package-lock.json": "{}", ".npmrc": "" })).files).toEqual([
      "package.json",
      "package-lock.json",
      ".npmrc",
    ]);
    expect((await layerOf({ ...server, "package.json": pkg, "yarn.lock": "", ".yarnrc.yml": "", ".yarn/releases/x.cjs": "" })).files).toEqual([
      "package.json",
      "yarn.lock",
      ".yarnrc.yml",
      ".yarn",
    ]);
    expect((await layerOf({ ...server, "package.json": pkg, "pnpm-lock.yaml": "lockfileVersion: '9.0'\n" })).files).toEqual(["package.json", "pnpm-lock.yaml"]);
  });

  it("are the whole source when the install may read any file: an install script, a local dependency, workspaces, a command of the user's", async () => {
    const withScript = JSON.stringify({ scripts: { start: "node server.js", postinstall: "node setup.js" } });
    expect(await layerOf({ ...server, "package.json": withScript, "package-lock.json": "{}" })).toEqual({
      files: null,
      line: "Image layers: the whole source goes in before the install (package.json has a postinstall script, which the install runs), so each commit installs again",
    });
    const local = JSON.stringify({ scripts: { start: "node server.js" }, dependencies: { lib: "file:./lib" } });
    expect((await layerOf({ ...server, "package.json": local, "package-lock.json": "{}" })).line).toContain("lib in dependencies is a path of the repository");
    const workspaces = JSON.stringify({ scripts: { start: "node server.js" }, workspaces: ["packages/*"] });
    expect((await layerOf({ ...server, "package.json": workspaces, "package-lock.json": "{}" })).line).toContain("package.json names workspaces");
    const pkg = JSON.stringify({ scripts: { start: "node server.js" } });
    expect((await layerOf({ ...server, "package.json": pkg }, { installCommand: "make deps" })).line).toContain("the service's own install command");
  });

  it("are a Python app's requirements file, unless it names files of the app or pip installs the app itself", async () => {
    const app = { "app.py": "print('hi')\n" };
    expect((await layerOf({ ...app, "requirements.txt": "flask==3.0.0\n--index-url https://mirror/simple\n" })).files).toEqual(["requirements.txt"]);
    expect((await layerOf({ ...app, "requirements.txt": "-e .\n" })).files).toBeNull();
    expect((await layerOf({ ...app, "requirements.txt": "-r base.txt\n", "base.txt": "flask\n" })).files).toBeNull();
    const project =
      '[project]\nname = "x"\nversion = "1"\ndependencies = ["flask"]\n[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n';
    expect(await layerOf({ ...app, "pyproject.toml": project })).toMatchObject({ files: null, line: expect.stringContaining("pip installs the app itself") });
  });

  it("reads requirements files line by line, comments aside", () => {
    expect(requirementsReadFiles("flask==3.0.0  # the web framework\n# -r other.txt\n--hash=sha256:abc\n")).toBeNull();
    expect(requirementsReadFiles("./wheels/x.whl\n")).toBe("names a path of the app (./wheels/x.whl)");
    expect(requirementsReadFiles("--find-links wheels\nflask\n")).toBe("has --find-links, which may name a file of the app");
    expect(requirementsReadFiles("pkg @ file:///src/pkg\n")).toBe("names a path of the app (pkg @ file:///src/pkg)");
  });
});

describe("the order of a generated Dockerfile", () => {
  it("copies the install's files, installs, then copies the rest and builds", async () => {
    const pkg = JSON.stringify({ scripts: { build: "node build.js", start: "node server.js" }, dependencies: { ms: "^2.1.3" } });
    expect(await dockerfileOf({ ...server, "package.json": pkg, "package-lock.json": "{}" })).toEqual([
      'COPY ["src/package.json","/app/package.json"]',
      'COPY ["src/package-lock.json","/app/package-lock.json"]',
      "RUN npm ci --include=dev --no-audit --no-fund",
      "COPY src /app",
      "RUN npm run build",
    ]);
  });

  it("copies the whole source before any step when there is no install, or the install may read any file", async () => {
    expect(await dockerfileOf({ "index.html": "<h1>hi</h1>" })).toEqual(["COPY src /app", "RUN test -d ."]);
    const withScript = JSON.stringify({ scripts: { start: "node server.js", prepare: "node setup.js" } });
    expect(await dockerfileOf({ ...server, "package.json": withScript, "package-lock.json": "{}" })).toEqual([
      "COPY src /app",
      "RUN npm ci --include=dev --no-audit --no-fund",
    ]);
  });

  it("declares the commit (SLIPWAY_GIT_COMMIT, SOURCE_VERSION) after the source is copied: a new commit leaves the install's layer as it was", async () => {
    const pkg = JSON.stringify({ scripts: { build: "node build.js", start: "node server.js" }, dependencies: { ms: "^2.1.3" } });
    expect(await dockerfileOf({ ...server, "package.json": pkg, "package-lock.json": "{}" }, true)).toEqual([
      'COPY ["src/package.json","/app/package.json"]',
      'COPY ["src/package-lock.json","/app/package-lock.json"]',
      "RUN npm ci --include=dev --no-audit --no-fund",
      "COPY src /app",
      "ARG SLIPWAY_GIT_COMMIT",
      "ARG SOURCE_VERSION",
      "RUN npm run build",
    ]);
    expect(await dockerfileOf({ "index.html": "<h1>hi</h1>" }, true)).toEqual([
      "COPY src /app",
      "ARG SLIPWAY_GIT_COMMIT",
      "ARG SOURCE_VERSION",
      "RUN test -d .",
    ]);
  });
});
