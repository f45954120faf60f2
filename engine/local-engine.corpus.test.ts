import fsp from "node:fs/promises";
import path from "node:path";
import { chromium } from "@playwright/test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, request, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { cachedCorpus, type CorpusApp } from "../test/support/corpus";
import { cachedPackageManagers, cachedPackages, type NpmRegistry, startNpmRegistry } from "../test/support/npm-registry";
import { cachedWheels, type PythonIndex, startPythonIndex } from "../test/support/python-index";
import { parseNodeDefault } from "./config";
import type { Engine } from "./core";

/**
 * Issue 14, "How it is shown": public example apps nobody here wrote (test/fixtures/corpus/fetch
 * says where each comes from and what was adapted), each deployed by the real local engine with
 * no setting beyond its repository (and the workspace app's directory in it), and each answering
 * through the router with its own content. The engine is configured as an operator behind a mirror would configure it: Node,
 * the package managers and the apps' npm dependencies from an npm registry on 127.0.0.1 serving
 * the real packages the apps' lockfiles lock, Python packages from a package index on 127.0.0.1.
 * Apps that name no Node version get the current LTS, installed from that registry.
 */
const corpus = await cachedCorpus();
const nodes = await cachedPackages();
const managers = await cachedPackageManagers();
const wheels = await cachedWheels();
// Nothing skips: this suite exists to show these apps deploy, and a skipped run shows nothing.
const missing = [corpus, nodes, managers, wheels].flatMap((cached) => (cached.ok ? [] : [cached.missing]));
if (missing.length > 0) throw new Error(`The corpus test needs ${missing.join("; ")}.`);
const fetched = corpus.ok ? corpus : null!;
const node = nodes.ok ? nodes : null!;
const manager = managers.ok ? managers : null!;
const python = wheels.ok ? wheels : null!;

describe("local engine: a corpus of public example apps, deployed with no flags", () => {
  let registry: NpmRegistry;
  let index: PythonIndex;
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;

  beforeAll(async () => {
    registry = await startNpmRegistry([...fetched.tarballs, node.node22.file, node.npm.file, manager.yarn.file, manager.pnpm10.file]);
    index = await startPythonIndex(python.dir);
    git = await startGitServer();
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, {
      registry: registry.url,
      nodeDefault: parseNodeDefault("lts"),
      pip: { PIP_INDEX_URL: index.url },
    });
    engine = env.newEngine();
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await index?.close();
    await registry?.close();
  });

  /**
   * Pushes the app to a repository of the git server and deploys it as
   * service `name`, its settings left to their defaults but for the repository's `git` ones.
   */
  async function deploy(name: CorpusApp, gitSettings: Record<string, unknown> = {}) {
    await git.createRepo(name, fetched.app(name));
    const spec = service({ name, config: { git: { url: git.url(name), ...gitSettings } } });
    const deployment = task("DEPLOY", [spec]);
    await engine.execute(deployment);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    expect(env.final(deployment.deploymentId), log.join("\n")).toMatchObject({ status: "succeeded" });
    return log;
  }

  /** A page of the app through the router, which must answer 200. */
  async function page(name: CorpusApp, urlPath = "/") {
    const answer = await request(env.routerPort, `${name}-test.localhost`, urlPath);
    expect(answer.status, `${urlPath}: ${answer.body.slice(0, 500)}`).toBe(200);
    return answer;
  }

  /** The detection line of the build log. */
  const detected = (log: string[]) => log.find((line) => line.startsWith("detected ")) ?? log.join("\n");

  it("Express (express-generator) with yarn classic: yarn from yarn.lock, express from the registry", async () => {
    // yarn 1 fetches the URLs its lockfile names, whatever registry it is told (npm, pnpm and
    // berry ask the configured one): the engine points the checkout's yarn.lock, written against
    // registry.yarnpkg.com as most are, at its registry, or yarn would leave this machine.
    const lock = await fsp.readFile(path.join(fetched.app("express-yarn"), "yarn.lock"), "utf8");
    expect(lock).toContain('resolved "https://registry.yarnpkg.com/express/-/express-4.');
    const log = await deploy("express-yarn");
    expect(log).toContain(`Package manager: yarn ${manager.yarn.version} (from yarn.lock), installed from ${registry.url}`);
    expect(log.find((line) => line.startsWith("yarn.lock: "))).toMatch(
      new RegExp(
        `^yarn\\.lock: its resolved URLs \\(\\d+ on registry\\.yarnpkg\\.com\\) now point at ${registry.url.replaceAll(".", "\\.")}, as yarn 1 downloads`,
      ),
    );
    expect(detected(log)).toMatch(/^detected Express: `yarn install --frozen-lockfile --production=false`; start `yarn start`/);
    expect((await page("express-yarn")).body).toContain("<p>Welcome to Express</p>");
    expect((await page("express-yarn", "/users")).body).toBe("respond with a resource");
    expect(registry.downloads().some((file) => file.startsWith("/express/-/express-4."))).toBe(true);
  }, 180_000);

  it("Fastify (fastify-cli) with an engines range: the highest Node that satisfies it", async () => {
    const log = await deploy("fastify-engines");
    // Installed by an earlier deploy of this file, or by this one: either way, the engine's.
    expect(log.find((line) => line.startsWith("Node "))).toContain(`Node ${node.node22.version} (from engines.node ">=20"), npm ${node.npm.version}`);
    expect(detected(log)).toMatch(/^detected Fastify: `npm ci --include=dev --no-audit --no-fund`; start `npm start`/);
    expect(JSON.parse((await page("fastify-engines")).body)).toEqual({ root: true });
    expect((await page("fastify-engines", "/example")).body).toBe("this is an example");
  }, 180_000);

  it("a Vite app in a subdirectory of a pnpm workspace: installed at the root, built with --filter", async () => {
    // The one setting it has: the app's directory in its repository.
    const log = await deploy("pnpm-workspace", { rootDirectory: "apps/web" });
    expect(log).toContain(`Package manager: pnpm ${manager.pnpm10.version} (from pnpm-lock.yaml (lockfileVersion 9.0)), installed from ${registry.url}`);
    expect(detected(log)).toBe(
      "detected Vite: `pnpm install --frozen-lockfile --prod=false (at the repository root)`, then `pnpm --filter ./apps/web run build (at the repository root)`; serve dist/ (because apps/web is a pnpm workspace package (pnpm-workspace.yaml); vite is a dependency; no client-side router library, so no SPA fallback)",
    );
    const home = await page("pnpm-workspace");
    expect(home.body).toContain("<title>web</title>");
    // Vite's build: index.html names its hashed bundle, which the static server serves.
    const bundle = /src="(\/assets\/index-[\w-]+\.js)"/.exec(home.body)?.[1];
    expect(bundle, home.body).toBeDefined();
    expect((await page("pnpm-workspace", bundle)).body).toContain("Get started");
  }, 180_000);

  it("Next.js (create-next-app): next build, then next start", async () => {
    const log = await deploy("next");
    expect(detected(log)).toMatch(/^detected Next\.js: `npm ci --include=dev --no-audit --no-fund`, then `npm run build`; start `next start`/);
    const home = await page("next");
    expect(home.body).toContain("<title>Create Next App</title>");
    expect(home.body).toContain("<div>Hello World!</div>");
    expect(home.headers["x-powered-by"]).toBe("Next.js");
  }, 300_000);

  it("a Vite React SPA (create-vite): served from dist/, a deep link answering index.html", async () => {
    const log = await deploy("vite-react");
    expect(detected(log)).toMatch(
      /^detected Vite SPA: .*; serve dist\/ with SPA fallback to index\.html \(because vite is a dependency; react routes on the client\)$/,
    );
    const deep = await page("vite-react", "/docs/getting-started?tab=1");
    expect(deep.body).toContain('<div id="root"></div>');
    expect(deep.body).toContain("<title>vite-react</title>");
    const bundle = /src="(\/assets\/index-[\w-]+\.js)"/.exec(deep.body)?.[1];
    const script = await page("vite-react", bundle);
    expect(script.body).toContain("Get started");
    // The engine's static server: a hashed asset is cached for good.
    expect(script.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
  }, 180_000);

  it("a Vite SPA with client routes (create-vue with Vue Router): a deep link renders its route in a browser", async () => {
    const log = await deploy("vue-router");
    expect(detected(log)).toMatch(
      /^detected Vite SPA: .*; serve dist\/ with SPA fallback to index\.html \(because vite is a dependency; vue routes on the client\)$/,
    );
    expect((await page("vue-router", "/about")).body).toContain('<div id="app"></div>');
    // Debian's chromium, as the end-to-end suite drives it; *.localhost is the loopback to it, as to curl.
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium" });
    try {
      const tab = await browser.newPage();
      const scripts: string[] = [];
      tab.on("request", (sent) => scripts.push(new URL(sent.url()).pathname));
      const answer = await tab.goto(`http://vue-router-test.localhost:${env.routerPort}/about`);
      expect(answer?.status()).toBe(200);
      // The router's /about route, whose view is a chunk of its own, loaded for it.
      await tab.getByRole("heading", { name: "This is an about page" }).waitFor({ timeout: 15_000 });
      expect(
        scripts.some((file) => /^\/assets\/AboutView-[\w-]+\.js$/.test(file)),
        scripts.join("\n"),
      ).toBe(true);
      // Its links route on the client: Home replaces the about page without a request for a page.
      const pages = scripts.length;
      await tab.getByRole("link", { name: "Home" }).click();
      await tab.getByRole("heading", { name: "Documentation" }).waitFor({ timeout: 15_000 });
      expect(new URL(tab.url()).pathname).toBe("/");
      expect(await tab.getByRole("heading", { name: "This is an about page" }).count()).toBe(0);
      expect(scripts.slice(pages).filter((file) => !file.startsWith("/assets/"))).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 300_000);

  it("Create React App (cra-template): react-scripts build, build/ served, never the dev server", async () => {
    const log = await deploy("cra");
    expect(detected(log)).toMatch(
      /^detected Create React App: `npm ci --include=dev --no-audit --no-fund`, then `npm run build`; serve build\/ with SPA fallback to index\.html/,
    );
    const deep = await page("cra", "/some/client/route");
    expect(deep.body).toContain("<title>React App</title>");
    const bundle = /src="(\/static\/js\/main\.[0-9a-f]+\.js)"/.exec(deep.body)?.[1];
    expect(bundle, deep.body).toBeDefined();
    const script = await page("cra", bundle);
    expect(script.body).toContain("Learn React");
    // Served by the engine's static server from build/ (webpack's dev server caches nothing).
    expect(script.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
  }, 600_000);

  it("a Procfile app (Werkzeug's upload example): its web process, its requirements from the index", async () => {
    const log = await deploy("procfile");
    expect(log.join("\n")).toContain("Start: gunicorn --bind 0.0.0.0:$PORT upload:application (the Procfile's web process)");
    expect((await page("procfile")).body).toContain("<h1>Upload File</h1>");
    expect(index.downloads().some((wheel) => wheel.startsWith("Werkzeug-"))).toBe(true);
  }, 180_000);

  it("a Flask app (Flask's minimal application) with requirements.txt: gunicorn serves app:app", async () => {
    const log = await deploy("flask");
    expect(log.join("\n")).toContain("Start: gunicorn serves the WSGI app app:app (Flask; gunicorn is a dependency)");
    expect((await page("flask")).body).toBe("<p>Hello, World!</p>");
    expect(index.downloads().some((wheel) => wheel.startsWith("Flask-"))).toBe(true);
  }, 180_000);

  it("a Python standard-library app (CPython's wasm_webserver.py), started by its Procfile", async () => {
    const log = await deploy("python-stdlib");
    expect(detected(log)).toMatch(/^detected Procfile: nothing to build; start `python3 wasm_webserver\.py --port \$PORT`/);
    const terminal = await page("python-stdlib", "/python.html");
    expect(terminal.body).toContain("<title>wasm-python terminal</title>");
    // Its own request handler's headers.
    expect(terminal.headers["cross-origin-opener-policy"]).toBe("same-origin");
  }, 180_000);

  it("plain HTML (Werkzeug's documentation, as Sphinx built it): the files served as they are", async () => {
    const log = await deploy("html");
    expect(detected(log)).toBe("detected static HTML: nothing to build; serve the app's files (because index.html at the app's root, no package.json)");
    expect((await page("html")).body).toContain("<title>Werkzeug &#8212; Werkzeug Documentation (2.2.x)</title>");
    expect((await page("html", "/quickstart.html")).body).toContain("<title>Quickstart &#8212; Werkzeug Documentation (2.2.x)</title>");
    expect((await page("html", "/_static/doctools.js")).body).toContain("Sphinx");
  }, 180_000);
});
