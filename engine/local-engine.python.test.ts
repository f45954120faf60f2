import fsp from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { cachedWheels, type PythonIndex, sha256Of, startPythonIndex } from "../test/support/python-index";
import { skipWithout } from "../test/support/requirements";
import { testToolchains } from "../test/support/toolchains";
import type { Engine } from "./core";
import { launchSpec } from "./runtime/local/layout";

// Debian 12's Flask, gunicorn, uvicorn and Starlette, packed into wheels by test/fixtures/pypi/fetch.
const wheels = await cachedWheels();

describe.skipIf(skipWithout(wheels.ok ? null : wheels.missing))("local engine: Python apps from the engine's package index", () => {
  const cached = wheels.ok ? wheels : null!;
  let index: PythonIndex;
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;

  beforeAll(async () => {
    index = await startPythonIndex(cached.dir);
    git = await startGitServer();
    // The index as an operator configures it: PIP_INDEX_URL in the engine's environment (engine/config.ts).
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, { ...testToolchains, pip: { PIP_INDEX_URL: index.url } });
    engine = env.newEngine();
    await engine.start();
  }, 60_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await index?.close();
  });

  async function deploy(name: string, app: string, files: Record<string, string> = {}, config: Record<string, unknown> = {}) {
    await git.createRepo(name, fixture(app), files);
    const spec = service({ name, config: { git: { url: git.url(name) }, buildTimeoutSeconds: 300, healthCheckTimeoutSeconds: 30, ...config } });
    const deployment = task("DEPLOY", [spec]);
    await engine.execute(deployment);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    return { spec, final: env.final(deployment.deploymentId), log };
  }

  async function answer(name: string) {
    const response = await env.get(`${name}-test.localhost`);
    expect(response.status, response.body).toBe(200);
    return response.body;
  }

  it("serves a Flask app with requirements.txt through gunicorn, installed from the engine's index in the release's own virtualenv", async () => {
    const before = index.downloads().length;
    const { spec, final, log } = await deploy("flask", "python-flask");
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log.join("\n")).toContain("Dependencies: pip install -r requirements.txt (from requirements.txt)");
    expect(log.join("\n")).toContain("Start: gunicorn serves the WSGI app app:app (Flask; gunicorn is a dependency)");
    expect(log.some((line) => /^Python 3\.\d+\.\d+ \(no version named: the host's python3\)/.test(line))).toBe(true);
    expect(JSON.parse(await answer("flask"))).toEqual({ app: "python-flask", server: "gunicorn", flask: "2.2.2" });
    // Every wheel came from the index: Flask, its dependencies and gunicorn.
    const downloaded = index.downloads().slice(before);
    for (const project of ["Flask-2.2.2", "Werkzeug-", "Jinja2-", "MarkupSafe-", "itsdangerous-", "click-", "gunicorn-20.1.0"])
      expect(
        downloaded.some((wheel) => wheel.startsWith(project)),
        `${project} in ${downloaded.join(", ")}`,
      ).toBe(true);
    expect(index.requests).toContain("/simple/flask/");
    // The virtualenv is the release's, inside its checkout.
    const releases = path.join(env.home, "services", spec.id, "releases");
    const [releaseId] = await fsp.readdir(releases);
    await expect(fsp.stat(path.join(releases, releaseId!, "src", ".venv", "bin", "gunicorn"))).resolves.toBeTruthy();
    // The index setting reached the install, not the running app (a mirror's URL may hold a token).
    const launch = launchSpec.parse(JSON.parse(await fsp.readFile(path.join(releases, releaseId!, "launch.json"), "utf8")));
    expect(launch.env.PIP_INDEX_URL).toBeUndefined();
    expect(launch.env.VIRTUAL_ENV).toBe(path.join(releases, releaseId!, "src", ".venv"));
  }, 120_000);

  it("serves a Starlette app under uvicorn", async () => {
    const { final, log } = await deploy("starlette", "python-starlette");
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log.join("\n")).toContain("Start: uvicorn serves the ASGI app main:app (Starlette; uvicorn is a dependency)");
    expect(JSON.parse(await answer("starlette"))).toEqual({ app: "python-starlette", server: "uvicorn" });
  }, 120_000);

  it("installs a Pipfile.lock's pinned packages with their hashes checked, and refuses a wheel whose hash differs", async () => {
    const pinned = ["Flask", "Werkzeug", "Jinja2", "MarkupSafe", "itsdangerous", "click", "gunicorn"];
    const entries = await Promise.all(
      pinned.map(async (project) => {
        const wheel = cached.files.find((file) => file.startsWith(`${project}-`))!;
        return [project.toLowerCase(), { version: `==${wheel.split("-")[1]}`, hashes: [`sha256:${await sha256Of(path.join(cached.dir, wheel))}`] }] as const;
      }),
    );
    const lock = (default_: Record<string, unknown>) =>
      JSON.stringify({ _meta: { requires: { python_version: "3" } }, default: default_, develop: {} }, null, 2);
    const { final, log } = await deploy("pipfile", "python-pipfile", { "Pipfile.lock": lock(Object.fromEntries(entries)) });
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log.join("\n")).toContain("Dependencies: Pipfile.lock's default packages, pinned with their hashes (pip --require-hashes; pipenv is not provided)");
    expect(JSON.parse(await answer("pipfile"))).toEqual({ app: "python-pipfile", server: "gunicorn" });

    const wrong = Object.fromEntries(entries.map(([name, entry]) => [name, name === "flask" ? { ...entry, hashes: [`sha256:${"0".repeat(64)}`] } : entry]));
    const tampered = await deploy("pipfile-wrong", "python-pipfile", { "Pipfile.lock": lock(wrong) });
    expect(tampered.final?.status).toBe("failed");
    expect(tampered.final?.message).toMatch(/install command `\.venv\/bin\/pip install .*--require-hashes.*` failed/);
    expect(tampered.final?.message).toContain("THESE PACKAGES DO NOT MATCH THE HASHES");
  }, 120_000);

  it("runs a standard-library app.py with no dependency file, on the Python .python-version names", async () => {
    const { final, log } = await deploy("stdlib", "python-stdlib", { ".python-version": "3\n" });
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log.join("\n")).toContain("Dependencies: none (no requirements.txt, Pipfile.lock or pyproject.toml dependencies)");
    expect(log.some((line) => /^Python 3\.\d+\.\d+ \(from \.python-version "3"\)/.test(line))).toBe(true);
    expect(await answer("stdlib")).toMatch(/^python-stdlib on 3\.\d+\n$/);
  }, 120_000);

  it("fails the build of a pythonVersion no interpreter of the host matches, naming it and the versions there are", async () => {
    const { final } = await deploy("old-python", "python-stdlib", {}, { pythonVersion: "3.4" });
    expect(final?.status).toBe("failed");
    expect(final?.message).toMatch(
      /no Python on the engine's host matches the service's pythonVersion "3\.4" \(it has 3\.\d+\.\d+.*; the engine uses the host's interpreters/,
    );
    expect((await env.get("old-python-test.localhost")).status).toBe(503);
  }, 120_000);
});
