import fsp from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { cachedCorpus, type CorpusApp } from "../test/support/corpus";
import { cachedPackageManagers, cachedPackages, type NpmRegistry, startNpmRegistry } from "../test/support/npm-registry";
import { parseNodeDefault } from "./config";
import type { Engine } from "./core";
import { EVENT_MESSAGE_MAX } from "./protocol/events";

/**
 * Issue 15, item 3: a failed deployment says what went wrong, in the tool's own line, even when
 * the tool printed a long stack after it. Real apps (test/fixtures/corpus) broken as users break
 * them, built and started by the real local engine with their real tools (Vite and Rolldown,
 * yarn and Node), their packages from an npm registry on 127.0.0.1.
 */
const corpus = await cachedCorpus();
const nodes = await cachedPackages();
const managers = await cachedPackageManagers();
const missing = [corpus, nodes, managers].flatMap((cached) => (cached.ok ? [] : [cached.missing]));
if (missing.length > 0) throw new Error(`This test needs ${missing.join("; ")}.`);
const fetched = corpus.ok ? corpus : null!;
const node = nodes.ok ? nodes : null!;
const manager = managers.ok ? managers : null!;

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

describe("local engine: a failure's message names what went wrong", () => {
  let registry: NpmRegistry;
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  let repos = 0;

  beforeAll(async () => {
    registry = await startNpmRegistry([...fetched.tarballs, node.node22.file, node.npm.file, manager.yarn.file]);
    git = await startGitServer();
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, { registry: registry.url, nodeDefault: parseNodeDefault("lts") });
    engine = env.newEngine();
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await registry?.close();
  });

  /** Deploys the corpus app with `changes` made to its files; the failed step's event and the deployment's output. */
  async function deployBroken(name: CorpusApp, changes: (dir: string) => Promise<Record<string, string>>) {
    // A repository per deployment: each test breaks the app its own way.
    const repo = `${name}-${++repos}`;
    await git.createRepo(repo, fetched.app(name), await changes(fetched.app(name)));
    const deployment = task("DEPLOY", [service({ name, config: { git: { url: git.url(repo) }, healthCheckTimeoutSeconds: 20 } })]);
    await engine.execute(deployment);
    const output = env.lines
      .filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId)
      .map((line) => line.text);
    const failed = env.eventsOf(deployment.deploymentId).find((event) => event.status === "failed" && event.serviceId);
    expect(failed, output.join("\n")).toBeDefined();
    return { failed: failed!, message: failed!.message ?? "", output };
  }

  it("a Vite build that cannot resolve an import: Rolldown's error line, before the stack it prints after it, without colours", async () => {
    const { failed, message, output } = await deployBroken("vite-react", async (dir) => {
      const main = await fsp.readFile(path.join(dir, "src/main.jsx"), "utf8");
      return { "src/main.jsx": main.replace("import './index.css'", "import './index.css'\nimport './does-not-exist.css'") };
    });
    expect(failed.step).toBe("build");
    // The build's output has the error, in colour: the message quotes it in plain text.
    expect(output.some((line) => ANSI.test(line))).toBe(true);
    expect(message).toMatch(/^build command `npm run build` failed \(exit 1\); its last lines:\n/);
    expect(message).toMatch(
      /\nerror during build:\nBuild failed with 1 error:\n\[UNRESOLVED_IMPORT\] Could not resolve '\.\/does-not-exist\.css' in src\/main\.jsx\n/,
    );
    expect(message).not.toMatch(ANSI);
    expect(message.length).toBeLessThanOrEqual(EVENT_MESSAGE_MAX);
  }, 300_000);

  it("a Vite build with many unresolved imports: the first error leads, the last lines follow, and the message fits an event", async () => {
    const moved = Array.from({ length: 8 }, (_, i) => `import './styles/moved-${i}.css'`).join("\n");
    const { message } = await deployBroken("vite-react", async (dir) => {
      const main = await fsp.readFile(path.join(dir, "src/main.jsx"), "utf8");
      return { "src/main.jsx": main.replace("import './index.css'", `import './index.css'\n${moved}`) };
    });
    const [, lines = ""] = message.split("; its last lines:\n");
    // Rolldown reports all eight with a code frame each, more than the tail keeps: what it starts with stays in front.
    expect(lines).toMatch(
      /^error during build:\nBuild failed with 8 errors:\n\[UNRESOLVED_IMPORT\] Could not resolve '\.\/styles\/moved-0\.css' in src\/main\.jsx\n.*\n… \d+ lines omitted …\n/,
    );
    expect(lines).toMatch(/errors: \[Getter\/Setter\]\n\}$/);
    expect(message).not.toMatch(ANSI);
    expect(message.length).toBeLessThanOrEqual(EVENT_MESSAGE_MAX);
  }, 300_000);

  it("an Express app that requires a missing module: Node's error and its require stack, before the stack trace", async () => {
    const { failed, message } = await deployBroken("express-yarn", async (dir) => {
      const app = await fsp.readFile(path.join(dir, "app.js"), "utf8");
      return { "app.js": `const boom = require("a-missing-module");\n${app}` };
    });
    expect(failed.step).toBe("health_check");
    expect(message).toMatch(/^start command `yarn start`: .*exited with code 1 before it became healthy; its last output:\n/);
    expect(message).toContain("Error: Cannot find module 'a-missing-module'");
    expect(message).toMatch(/\nRequire stack:\n- .*\/app\.js\n/);
    // The end of what it printed is there too: Node's stack and yarn's own last word.
    expect(message).toContain("at Module._compile");
    expect(message).toMatch(/error Command failed with exit code 1\.$/);
    expect(message).not.toMatch(ANSI);
    expect(message.length).toBeLessThanOrEqual(EVENT_MESSAGE_MAX);
  }, 300_000);
});
