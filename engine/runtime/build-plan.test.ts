import { describe, expect, it } from "vitest";
import { detectBuildPlan, procfileWebCommand, type RepoFacts } from "./build-plan";

function facts(files: string[], extra: Partial<RepoFacts> = {}): RepoFacts {
  return { files: new Set(files), packageJson: null, procfile: null, requirementsTxt: null, nvmrc: null, nodeVersionFile: null, pnpmLock: null, ...extra };
}

function plan(input: RepoFacts, overrides = {}) {
  const result = detectBuildPlan(input, overrides);
  if (!result.ok) throw new Error(result.reason);
  return result.plan;
}

describe("detectBuildPlan", () => {
  it("installs a Node app with the package manager its lockfile names", () => {
    const pkg = { scripts: { start: "node server.js" } };
    const npm = plan(facts(["package.json", "package-lock.json"], { packageJson: pkg }));
    expect(npm.steps[0]).toMatchObject({ step: "install", argv: ["npm", "ci", "--include=dev", "--no-audit", "--no-fund"] });
    expect(npm.packageManager).toMatchObject({ flavor: "npm", range: null, reason: "from package-lock.json" });
    const pnpm = plan(facts(["package.json", "pnpm-lock.yaml"], { packageJson: pkg, pnpmLock: "lockfileVersion: '9.0'\n" }));
    expect(pnpm.steps[0]?.argv).toEqual(["pnpm", "install", "--frozen-lockfile", "--prod=false"]);
    expect(pnpm.start).toMatchObject({ argv: ["pnpm", "start"] });
    const yarn = plan(facts(["package.json", "yarn.lock"], { packageJson: { scripts: { build: "tsc", start: "node x" } } }));
    expect(yarn.steps.map((step) => step.display)).toEqual(["yarn install --frozen-lockfile --production=false", "yarn run build"]);
    expect(yarn.start).toMatchObject({ argv: ["yarn", "start"] });
    const berry = plan(facts(["package.json", "yarn.lock", ".yarnrc.yml"], { packageJson: pkg }));
    expect(berry.steps[0]?.argv).toEqual(["yarn", "install", "--immutable"]);
    expect(plan(facts(["package.json"], { packageJson: pkg })).steps[0]?.argv).toEqual(["npm", "install", "--include=dev", "--no-audit", "--no-fund"]);
    expect(detectBuildPlan(facts(["package.json"], { packageJson: { packageManager: "bun@1.2.0" } }))).toEqual({
      ok: false,
      reason: 'packageManager "bun@1.2.0" names bun; the engine provides npm, yarn and pnpm',
    });
  });

  it("builds with the build script and starts with npm start, else node main", () => {
    const withScripts = plan(facts(["package.json"], { packageJson: { scripts: { build: "tsc", start: "node dist" } } }));
    expect(withScripts.steps.map((step) => [step.step, step.display])).toEqual([
      ["install", "npm install --include=dev --no-audit --no-fund"],
      ["build", "npm run build"],
    ]);
    expect(withScripts.start).toMatchObject({ type: "command", argv: ["npm", "start"] });
    expect(plan(facts(["package.json"], { packageJson: { main: "app.js" } })).start).toMatchObject({ argv: ["node", "app.js"] });
    expect(plan(facts(["package.json"], { packageJson: {} })).start).toMatchObject({ argv: ["node", "index.js"] });
  });

  it("lets the service's commands override detection, as one shell argument each", () => {
    const result = plan(facts(["package.json"], { packageJson: { scripts: { build: "tsc", start: "node x" } } }), {
      buildCommand: "make all; echo done",
      startCommand: "./run --fast",
    });
    expect(result.steps.at(-1)?.argv).toEqual(["/bin/sh", "-c", "make all; echo done"]);
    expect(result.start).toMatchObject({ argv: ["/bin/sh", "-c", "./run --fast"] });
  });

  it("lets the service's install command replace the detected install, and its nodeVersion win over the repository's", () => {
    const node = plan(facts(["package.json", "yarn.lock"], { packageJson: { engines: { node: "18" } }, nvmrc: "20" }), {
      installCommand: "yarn install --ignore-scripts",
      nodeVersion: ">=22 <23",
    });
    expect(node.steps).toEqual([{ step: "install", argv: ["/bin/sh", "-c", "yarn install --ignore-scripts"], display: "yarn install --ignore-scripts" }]);
    expect(node.node).toEqual({ stated: { source: "the service's nodeVersion", spec: ">=22 <23", want: { range: ">=22 <23" } } });
    // Python keeps its virtualenv, with pip in it, and runs the command there instead of pip's.
    const python = plan(facts(["requirements.txt", "app.py"], { requirementsTxt: "" }), { installCommand: ".venv/bin/pip install ." });
    expect(python.steps.map((step) => [step.step, step.display])).toEqual([
      ["install", "python3 -m venv .venv"],
      ["install", ".venv/bin/pip install ."],
    ]);
    expect(plan(facts(["index.html"]), { installCommand: "make deps", buildCommand: "make" }).steps.map((step) => step.step)).toEqual(["install", "build"]);
  });

  it("prefers a Procfile web line over the detected start", () => {
    const result = plan(
      facts(["package.json", "Procfile"], { packageJson: { scripts: { start: "x" } }, procfile: "worker: a\nweb: node web.js --port $PORT\n" }),
    );
    expect(result.start).toMatchObject({ argv: ["/bin/sh", "-c", "node web.js --port $PORT"] });
  });

  it("makes a virtualenv for Python and skips pip when requirements are empty", () => {
    const empty = plan(facts(["requirements.txt", "app.py"], { requirementsTxt: "# nothing\n" }));
    expect(empty.kind).toBe("python");
    expect(empty.steps.map((step) => step.display)).toEqual(["python3 -m venv --without-pip .venv"]);
    expect(empty.start).toMatchObject({ argv: [".venv/bin/python", "app.py"] });
    const withDeps = plan(facts(["requirements.txt", "main.py"], { requirementsTxt: "flask==3.0\n" }));
    expect(withDeps.steps[1]?.argv).toContain("requirements.txt");
    expect(withDeps.start).toMatchObject({ argv: [".venv/bin/python", "main.py"] });
    expect(detectBuildPlan(facts(["requirements.txt"], { requirementsTxt: "" })).ok).toBe(false);
  });

  it("serves a directory with index.html and no package.json as a static site", () => {
    expect(plan(facts(["index.html", "style.css"])).start.type).toBe("static");
  });

  it("asks for Node for an app with a package.json or a Node version file, with the version it names", () => {
    expect(plan(facts(["package.json"], { packageJson: {} })).node).toEqual({ stated: null });
    expect(plan(facts(["package.json"], { packageJson: { engines: { node: "20.x" } } })).node).toEqual({
      stated: { source: "engines.node", spec: "20.x", want: { range: "20.x" } },
    });
    expect(plan(facts(["Procfile", ".nvmrc"], { procfile: "web: node web.js", nvmrc: "lts/iron\n" })).node).toMatchObject({
      stated: { want: { range: "20" } },
    });
    expect(plan(facts(["requirements.txt", "app.py"], { requirementsTxt: "" })).node).toBeNull();
    expect(plan(facts(["index.html"])).node).toBeNull();
    expect(detectBuildPlan(facts(["package.json"], { packageJson: { engines: { node: "twenty" } } }))).toEqual({
      ok: false,
      reason: 'engines.node "twenty" in package.json is not a semver range',
    });
  });

  it("runs a Procfile-only app and refuses a repository it cannot understand", () => {
    expect(plan(facts(["Procfile", "main.go"], { procfile: "web: ./server" })).kind).toBe("procfile");
    const unknown = detectBuildPlan(facts(["main.go"]));
    expect(unknown).toMatchObject({ ok: false, reason: expect.stringContaining("could not detect") });
  });
});

describe("procfileWebCommand", () => {
  it("finds the web process among others", () => {
    expect(procfileWebCommand("release: migrate\r\nweb:   gunicorn app:app  \n")).toBe("gunicorn app:app");
    expect(procfileWebCommand("worker: x")).toBeNull();
  });
});
